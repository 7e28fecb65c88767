package ident

import (
	"os"
	"strconv"
	"unsafe"

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

// bootID returns an identity of the current boot: the boot counter that
// Windows 10 and later increment at every boot (BootId under
// PrefetchParameters), in decimal; where that value is missing (older
// Windows, Wine), "boottime:" and the kernel's boot time
// (NtQuerySystemInformation SystemTimeOfDayInformation, 100 ns since 1601)
// in decimal; "" if neither can be read.
//
// Boot times are only the fallback: Windows moves its recorded boot time
// when the clock is stepped, so two processes of one boot may then record
// different boot IDs, and the same-machine liveness check falls back to the
// lease (safe, only slower). Under Wine the boot time is the start of the
// wineserver, which is exactly the lifetime of Wine's PID space.
//
// A boot ID that stayed unchanged across a boot (a registry rolled back with
// a VM snapshot, say) would make two boots look alike, but proc.Check
// compares absolute creation times, which still tell a process of an
// earlier boot from one that reuses its PID.
func bootID() string {
	if c := bootCounter(); c != "" {
		return c
	}
	var tod systemTimeOfDay
	var n uint32
	if err := windows.NtQuerySystemInformation(windows.SystemTimeOfDayInformation,
		unsafe.Pointer(&tod), uint32(unsafe.Sizeof(tod)), &n); err != nil || tod.BootTime <= 0 {
		return ""
	}
	return "boottime:" + strconv.FormatInt(tod.BootTime, 10)
}

// systemTimeOfDay is SYSTEM_TIMEOFDAY_INFORMATION.
type systemTimeOfDay struct {
	BootTime      int64
	CurrentTime   int64
	TimeZoneBias  int64
	TimeZoneID    uint32
	Reserved      uint32
	BootTimeBias  uint64
	SleepTimeBias uint64
}

// bootCounter returns BootId under PrefetchParameters in decimal, or "".
func bootCounter() string {
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
