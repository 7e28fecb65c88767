package proc

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

// CPUTime counts the child's descendants: a grandchild burning CPU shows up
// while it runs, and an idle child's CPU time stays put.
func TestCPUTimeTree(t *testing.T) {
	// The grandchild spins ~400 ms of CPU, then everything sleeps.
	c, err := Start(exec.Command("sh", "-c", `sh -c 'end=$(($(date +%s%N)+400000000)); while [ $(date +%s%N) -lt $end ]; do :; done; sleep 30' & wait`))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(time.Second)
	time.Sleep(700 * time.Millisecond)
	busy, err := c.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if busy < 150*time.Millisecond {
		t.Fatalf("CPU time of a tree that spun 400 ms: %v", busy)
	}
	time.Sleep(500 * time.Millisecond)
	idle, err := c.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if idle-busy > 50*time.Millisecond {
		t.Fatalf("sleeping tree used %v of CPU in 500 ms", idle-busy)
	}
	c.Stop(time.Second)
	if _, err := c.CPUTime(); !errors.Is(err, errExited) {
		t.Fatalf("after exit: %v", err)
	}
}

func TestStatCPUTicks(t *testing.T) {
	line := []byte("42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 12345 0 0")
	got, err := statCPUTicks(line)
	if err != nil || got != 13 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := statCPUTicks([]byte("42 (x) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
}
