package proc

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestParsePSTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0:01.50":    1500 * time.Millisecond,
		"01:02":      62 * time.Second,
		"00:01:02":   62 * time.Second,
		"2-03:04:05": 2*24*time.Hour + 3*time.Hour + 4*time.Minute + 5*time.Second,
	} {
		if got, err := parsePSTime(in); err != nil || got != want {
			t.Errorf("parsePSTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5", "a:b", "x-01:02"} {
		if _, err := parsePSTime(bad); err == nil {
			t.Errorf("parsePSTime(%q) accepted", bad)
		}
	}
}

// treeCPU sums a process and its descendants, and only those, from real
// ps output (the path macOS and the BSDs take).
func TestTreeCPU(t *testing.T) {
	out := []byte(" 1 0 0:10.00\n 10 1 0:01.00\n 11 10 0:02.00\n 12 11 1:00.00\n 20 1 5:00.00\n")
	got, err := treeCPU(out, 10)
	if err != nil || got != 63*time.Second {
		t.Fatalf("treeCPU = %v, %v; want 63s", got, err)
	}
	if _, err := treeCPU(out, 99); err == nil {
		t.Fatal("missing root accepted")
	}
	if runtime.GOOS == "windows" {
		return // no ps there; Windows uses job accounting (cpu_windows.go)
	}
	if _, err := exec.LookPath("ps"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ps (Debian package procps) is missing")
		}
		t.Skip("no ps")
	}
	real, err := exec.Command("ps", "-A", "-o", "pid=,ppid=,time=").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := treeCPU(real, os.Getpid()); err != nil {
		t.Fatalf("own process in real ps output: %v", err)
	}
}
