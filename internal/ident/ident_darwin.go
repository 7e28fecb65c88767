package ident

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"sharelock/internal/proc"
)

// pidnsRequired: macOS has a single PID space per boot; PIDNS is always "".
const pidnsRequired = false

func collect() Identity {
	id := Identity{
		User:      unixUser(),
		Host:      hostname(),
		MachineID: platformUUID(),
		BootID:    bootSessionUUID(),
		PID:       os.Getpid(),
		ProcOK:    proc.LivenessSupported(),
	}
	if st, err := proc.SelfStartTime(); err == nil {
		id.StartTime = st
	}
	return id
}

// bootSessionUUID returns kern.bootsessionuuid, a UUID the kernel draws at
// every boot, or "" if unavailable. (kern.boottime is not used: it is a wall
// clock reading that moves when the clock is set.)
func bootSessionUUID() string {
	s, err := unix.Sysctl("kern.bootsessionuuid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(s)
}

// platformUUID returns the hardware UUID (IOPlatformUUID) as reported by
// `ioreg -rd1 -c IOPlatformExpertDevice`, or "" if it cannot be had within a
// few seconds.
func platformUUID() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/sbin/ioreg", "-rd1", "-c", "IOPlatformExpertDevice").Output()
	if err != nil {
		return ""
	}
	return parseIOPlatformUUID(out)
}

// parseIOPlatformUUID finds the line `"IOPlatformUUID" = "XXXXXXXX-..."` in
// ioreg output and returns the quoted value, or "".
func parseIOPlatformUUID(out []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(key) != `"IOPlatformUUID"` {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			return val[1 : len(val)-1]
		}
	}
	return ""
}
