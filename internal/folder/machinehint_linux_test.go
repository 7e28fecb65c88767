package folder

import "testing"

func TestOnShareLocal(t *testing.T) {
	if onShare(t.TempDir()) {
		t.Error("the test's temporary folder counted as a share")
	}
}
