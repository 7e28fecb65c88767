package folder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/windows"

	"sharelock/internal/testdir"
)

// openExclusive opens name with no sharing at all, as a program that wants
// a file to itself (or an old client) would.
func openExclusive(t *testing.T, name string) windows.Handle {
	t.Helper()
	p, _ := windows.UTF16PtrFromString(name)
	h, err := windows.CreateFile(p, windows.GENERIC_READ|windows.GENERIC_WRITE, 0, nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		t.Fatalf("exclusive open of %s: %v", name, err)
	}
	return h
}

// TestOurHandlesAllowDelete: while we have an owner file open (a heartbeat,
// a reader), another client can still delete it (garbage collection). With
// package os's share mode (no FILE_SHARE_DELETE) it could not: the control.
func TestOurHandlesAllowDelete(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "owner")
	if err := (OSFS{}).CreateExcl(name, []byte("x")); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name) // package os: FILE_SHARE_READ|FILE_SHARE_WRITE
	if err != nil {
		t.Fatal(err)
	}
	err = windows.DeleteFile(windows.StringToUTF16Ptr(name))
	f.Close()
	if err != windows.ERROR_SHARING_VIOLATION {
		t.Fatalf("control: DeleteFile while os.Open has it: %v, want ERROR_SHARING_VIOLATION (share modes not enforced?)", err)
	}

	for _, flag := range []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_APPEND} {
		if err := os.WriteFile(name, []byte("x"), 0o666); err != nil {
			t.Fatal(err)
		}
		f, err := openFile(name, flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = (OSFS{}).Remove(name)
		f.Close()
		if err != nil {
			t.Errorf("Remove while we have it open (flag %#x): %v", flag, err)
		}
	}
	// A listing handle does not stop a generation directory's removal.
	gdir := filepath.Join(dir, "gen")
	if err := os.Mkdir(gdir, 0o777); err != nil {
		t.Fatal(err)
	}
	d, err := openDirNoFollow(gdir)
	if err != nil {
		t.Fatal(err)
	}
	err = (OSFS{}).Rmdir(gdir)
	d.Close()
	if err != nil {
		t.Errorf("Rmdir while we list it: %v", err)
	}
}

// TestSharingViolationIsContention: a program holding an owner file
// exclusively for a moment delays a read or a heartbeat but does not fail
// it; one that keeps it fails it after the retries, with an error that
// names the cause and a fix.
func TestSharingViolationIsContention(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "owner")
	if err := (OSFS{}).CreateExcl(name, []byte("sharelock-owner 1\n")); err != nil {
		t.Fatal(err)
	}
	for _, op := range []struct {
		what string
		do   func() error
	}{
		{"read", func() error { _, err := (OSFS{}).ReadFile(name); return err }},
		{"heartbeat", func() error { return (OSFS{}).Overwrite(name, []byte("sharelock-owner 1\n")) }},
		{"lstat", func() error { _, err := (OSFS{}).Lstat(name); return err }},
	} {
		h := openExclusive(t, name)
		time.AfterFunc(60*time.Millisecond, func() { windows.CloseHandle(h) })
		start := time.Now()
		err := op.do()
		took := time.Since(start)
		if err != nil {
			t.Errorf("%s while another program had the file for 60 ms: %v", op.what, err)
		}
		t.Logf("%s took %v while another program had the file for 60 ms", op.what, took.Round(time.Millisecond))
		time.Sleep(70 * time.Millisecond)
	}

	h := openExclusive(t, name)
	start := time.Now()
	_, err := (OSFS{}).ReadFile(name)
	took := time.Since(start)
	windows.CloseHandle(h)
	if !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		t.Fatalf("read while another program keeps the file: %v, want ERROR_SHARING_VIOLATION", err)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("gave up after %v, want the retries (about 0.4 s)", took)
	}
	if fix := fixFor(name, err); fix == "" {
		t.Errorf("no fix for %v", err)
	} else {
		t.Logf("after %v: %v; fix: %s", took.Round(time.Millisecond), err, fix)
	}
}

// TestDeletePendingRetried: garbage collection deletes an owner file that
// another client still has open (it stays "delete pending" where the file
// system lacks POSIX delete semantics) and removes its directory once that
// client closes it, within the retries.
func TestDeletePendingRetried(t *testing.T) {
	dir := testdir.New(t)
	gdir := filepath.Join(dir, "00000000000000000001")
	if err := (OSFS{}).Mkdir(gdir); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(gdir, ownerName)
	if err := (OSFS{}).CreateExcl(name, []byte("x")); err != nil {
		t.Fatal(err)
	}
	reader, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := (OSFS{}).Remove(name); err != nil {
		t.Fatalf("Remove while another client reads it: %v", err)
	}
	// Whatever the file system does with the name now, a reader must see
	// "gone", a retryable pending delete, or (Wine: the file lives on until
	// its last handle closes) the old content; never a permission problem.
	if _, err := (OSFS{}).ReadFile(name); err != nil && !isNotExist(err) && !errors.Is(err, windows.ERROR_DELETE_PENDING) {
		t.Errorf("reading a deleted owner file another client has open: %v", err)
	} else {
		t.Logf("reading the deleted owner file while it is open elsewhere: %v", err)
	}
	time.AfterFunc(50*time.Millisecond, func() { reader.Close() })
	if err := (OSFS{}).Rmdir(gdir); err != nil {
		t.Errorf("Rmdir once the reader closed: %v", err)
	}
	if _, err := os.Lstat(gdir); !os.IsNotExist(err) {
		t.Errorf("generation directory still there: %v", err)
	}
}

// TestHeartbeatCostWindows logs what one heartbeat (Overwrite + Lstat of the
// successor) and one read cost here.
func TestHeartbeatCostWindows(t *testing.T) {
	dir := testdir.New(t)
	name := filepath.Join(dir, "owner")
	data := make([]byte, 300)
	if err := (OSFS{}).CreateExcl(name, data); err != nil {
		t.Fatal(err)
	}
	var beat, read []time.Duration
	for i := 0; i < 200; i++ {
		s := time.Now()
		if err := (OSFS{}).Overwrite(name, data); err != nil {
			t.Fatal(err)
		}
		(OSFS{}).Lstat(filepath.Join(dir, "next"))
		beat = append(beat, time.Since(s))
		s = time.Now()
		if _, err := (OSFS{}).ReadFile(name); err != nil {
			t.Fatal(err)
		}
		read = append(read, time.Since(s))
	}
	slices.Sort(beat)
	slices.Sort(read)
	t.Logf("heartbeat median %v p99 %v; read median %v p99 %v", beat[100], beat[197], read[100], read[197])
}

// TestAppendWindows: audit lines are appended, never written over, even
// when the file is open elsewhere.
func TestAppendWindows(t *testing.T) {
	name := filepath.Join(testdir.New(t), "audit.log")
	if err := (OSFS{}).Append(name, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	reader, err := openFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := (OSFS{}).Append(name, []byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("audit log %q, %v; want both lines", b, err)
	}
}
