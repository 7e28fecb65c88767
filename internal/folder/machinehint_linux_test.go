package folder

import "testing"

func TestShareKeyLocal(t *testing.T) {
	if _, share := shareKey(t.TempDir()); share {
		t.Error("the test's temporary folder counted as a share")
	}
}
