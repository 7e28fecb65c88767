package clock

import (
	"testing"
	"time"
)

func TestMonoAdvances(t *testing.T) {
	var c System
	a := c.Mono()
	time.Sleep(20 * time.Millisecond)
	b := c.Mono()
	if d := b - a; d < 15*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Mono advanced by %v over a 20ms sleep", d)
	}
}
