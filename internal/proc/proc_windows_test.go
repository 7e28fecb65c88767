package proc

import (
	"os"
	"testing"
)

func TestCheckSelfWindows(t *testing.T) {
	st, err := StartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("StartTime(self) = %d, %v", st, err)
	}
	if self, err := SelfStartTime(); err != nil || self != st {
		t.Fatalf("SelfStartTime() = %d, %v; want %d", self, err, st)
	}
	if got := Check(os.Getpid(), st); got != Alive {
		t.Errorf("Check(self) = %v, want alive", got)
	}
	if got := Check(os.Getpid(), st+1); got != Dead {
		t.Errorf("Check(self, wrong start) = %v, want dead", got)
	}
	if got := Check(0, 0); got != Unknown {
		t.Errorf("Check(0, 0) = %v, want unknown", got)
	}
}
