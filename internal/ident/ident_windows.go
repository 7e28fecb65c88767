package ident

import (
	"os"
	"strconv"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"sharelock/internal/proc"
)

// pidnsRequired: Windows has a single PID space per boot; PIDNS is always "".
const pidnsRequired = false

func collect() Identity {
	id := Identity{
		User:      windowsUser(),
		Host:      hostname(),
		MachineID: machineGUID(),
		BootID:    bootID(),
		PID:       os.Getpid(),
		ProcOK:    proc.LivenessSupported(),
	}
	if st, err := proc.SelfStartTime(); err == nil {
		id.StartTime = st
	}
	return id
}

// windowsUser returns "DOMAIN\user": GetUserNameEx(NameSamCompatible), which
// reads the logon session and needs no domain controller, then os/user, then
// %USERDOMAIN%\%USERNAME% (or %USERNAME% alone), then "".
func windowsUser() string {
	n := uint32(64)
	for range 3 {
		buf := make([]uint16, max(n, 1))
		err := windows.GetUserNameEx(windows.NameSamCompatible, &buf[0], &n)
		if err == nil {
			if s := windows.UTF16ToString(buf[:n]); s != "" {
				return s
			}
			break
		}
		if err != windows.ERROR_MORE_DATA {
			break
		}
	}
	if name := currentUser(); name != "" {
		return name
	}
	name, domain := os.Getenv("USERNAME"), os.Getenv("USERDOMAIN")
	if name != "" && domain != "" {
		return domain + `\` + name
	}
	return name
}

// machineGUID returns MachineGuid from the 64-bit registry view (a 32-bit
// process would otherwise be redirected to WOW6432Node, which lacks it).
func machineGUID() string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Cryptography`,
		registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return ""
	}
	defer k.Close()
	s, _, err := k.GetStringValue("MachineGuid")
	if err != nil {
		return ""
	}
	return s
}

// bootID returns the boot counter that Windows increments at every boot
// (BootId under PrefetchParameters), in decimal, or "" if it is missing.
//
// Boot times are not used: Windows derives them from the wall clock, so they
// move when the clock is set. A counter that went unchanged across a boot
// (a registry rolled back with a VM snapshot, say) would make two boots look
// alike, but proc.Check compares absolute creation times, which still tell a
// process of an earlier boot from one that reuses its PID.
func bootID() string {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE,
		`SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management\PrefetchParameters`,
		registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return ""
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue("BootId")
	if err != nil {
		return ""
	}
	return strconv.FormatUint(v, 10)
}
