package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitCheck(t *testing.T) {
	db := filepath.Join(t.TempDir(), "wems.db")
	var out, errb bytes.Buffer
	if code := run([]string{"check", db}, &out, &errb); code != 1 {
		t.Fatalf("check of a missing file: exit %d", code)
	}
	out.Reset()
	if code := run([]string{"init", db}, &out, &errb); code != 0 {
		t.Fatalf("init: %d %s", code, errb.String())
	}
	want := db + ": fence ready (table sharelock_fence)\n" + db + ": recorded fencing token 0\nsettings: journal_mode=delete busy_timeout=10000ms synchronous=full locking_mode=normal\n"
	if out.String() != want {
		t.Fatalf("init printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"check", db}, &out, &errb); code != 0 || !strings.Contains(out.String(), "recorded fencing token 0") {
		t.Fatalf("check: %d %q %s", code, out.String(), errb.String())
	}
	if code := run([]string{"frob"}, &out, &errb); code != 64 {
		t.Fatalf("usage: exit %d", code)
	}
}
