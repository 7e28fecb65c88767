package doctor_test

// doctor on real shares (package sharetest): each share is checked through
// one mount (what a user on one PC can do) and with the second mount as the
// peer (two clients, as two PCs see the share).

import (
	"os"
	"strings"
	"testing"
	"time"

	"sharelock/internal/doctor"
	"sharelock/internal/sharetest"
)

// shareDirs returns the share's two mounts; the scratch folders doctor made
// must be gone from the export afterwards.
func shareDirs(t *testing.T, sh *sharetest.Share) (a, b string) {
	t.Helper()
	t.Cleanup(func() {
		ents, err := os.ReadDir(sh.Export)
		if err != nil {
			t.Errorf("listing the export: %v", err)
			return
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".sharelock-doctor-") {
				t.Errorf("doctor left %s in the export", e.Name())
			}
		}
	})
	return sh.Mounts[0], sh.Mounts[1]
}

// commonShare checks what holds on every share: a FUSE network client,
// not cloud sync, atomic mkdir, a safe default lease, the folder ok.
func commonShare(t *testing.T, r *doctor.Report, subtype string) {
	t.Helper()
	if r.FS.Kind != "fuse" || !r.FS.Remote || r.FS.Subtype != subtype || r.FS.Type != "fuse."+subtype || r.FS.Magic != "0x65735546" {
		t.Errorf("filesystem %+v: want FUSE (0x65735546) subtype %s, remote", r.FS, subtype)
	}
	wantStatus(t, r, "access", doctor.OK)
	wantStatus(t, r, "cloud", doctor.OK)
	wantStatus(t, r, "filesystem", doctor.OK)
	wantStatus(t, r, "mkdir", doctor.OK)
	if !r.Races.Mkdir.Atomic() {
		t.Errorf("mkdir race %+v: want atomic", r.Races.Mkdir)
	}
	if r.Races.Mkdir.CrossClient != (r.Peer != "") || r.Visibility.CrossClient != (r.Peer != "") {
		t.Errorf("cross_client flags %v/%v with peer %q", r.Races.Mkdir.CrossClient, r.Visibility.CrossClient, r.Peer)
	}
	wantStatus(t, r, "rename", doctor.OK)
	if !r.OK {
		t.Errorf("the share cannot hold a lock, says the report (verdict %s)", r.Verdict)
	}
	if r.RoundTrip.MedianMS <= 0 || r.RoundTrip.MaxMS < r.RoundTrip.MedianMS {
		t.Errorf("round trip %+v", r.RoundTrip)
	}
	if r.ScratchLeft != "" {
		t.Errorf("scratch left: %s", r.ScratchLeft)
	}
	t.Logf("figures: round trip %.2f ms (slowest call %.2f ms); mkdir race %d double / %d none of %d, losers %v; excl race %d double / %d none of %d, losers %v; clock offset %.1f ± %.1f ms (resolution %g ms); visibility max %.1f ms",
		r.RoundTrip.MedianMS, r.RoundTrip.MaxMS,
		r.Races.Mkdir.DoubleWins, r.Races.Mkdir.NoWinner, r.Races.Mkdir.Rounds, r.Races.Mkdir.LoserErrors,
		r.Races.Excl.DoubleWins, r.Races.Excl.NoWinner, r.Races.Excl.Rounds, r.Races.Excl.LoserErrors,
		r.Clock.OffsetMS, r.Clock.UncertaintyMS, r.Clock.MtimeResolutionMS, r.Visibility.MaxMS)
}

func TestSMB(t *testing.T) {
	sh := sharetest.StartSMB(t)
	a, b := shareDirs(t, sh)
	for _, peer := range []string{"", b} {
		t.Run(map[bool]string{true: "one-mount", false: "peer"}[peer == ""], func(t *testing.T) {
			r := run(t, a, doctor.Options{Peer: peer})
			commonShare(t, r, "smbnetfs")
			// O_EXCL: smbnetfs drops it. One client's kernel serialises
			// the race, so there doctor knows it; across two clients it
			// usually measures double wins (logged: probabilistic).
			c := wantStatus(t, r, "excl", doctor.Warn)
			if peer != "" {
				t.Logf("excl across two smbnetfs clients: %d double wins of %d", r.Races.Excl.DoubleWins, r.Races.Excl.Rounds)
				if r.Races.Excl.DoubleWins > 0 && !strings.Contains(c.Title, "NOT atomic") {
					t.Errorf("double wins measured, but the check says %q", c.Title)
				}
			}
			wantStatus(t, r, "delete-open", doctor.Warn)
			if r.DeleteOpen.OK || r.DeleteOpen.Error != "EBUSY" {
				t.Errorf("delete of an open file: %+v, want EBUSY", r.DeleteOpen)
			}
			wantStatus(t, r, "link", doctor.Warn)
			if r.Link.Supported || r.Link.Error != "EPERM" {
				t.Errorf("link: %+v, want EPERM", r.Link)
			}
			wantStatus(t, r, "lease", doctor.OK)
			if r.Verdict != doctor.Warn {
				t.Errorf("verdict %s, want warn", r.Verdict)
			}
		})
	}
}

func TestSFTP(t *testing.T) {
	sh := sharetest.StartSFTP(t, false)
	a, b := shareDirs(t, sh)
	for _, peer := range []string{"", b} {
		t.Run(map[bool]string{true: "one-mount", false: "peer"}[peer == ""], func(t *testing.T) {
			r := run(t, a, doctor.Options{Peer: peer})
			commonShare(t, r, "sshfs")
			wantStatus(t, r, "excl", doctor.OK)
			// link works, but nlink always reads 1 through sshfs.
			wantStatus(t, r, "link", doctor.Warn)
			if !r.Link.Supported || r.Link.NLink != 1 {
				t.Errorf("link %+v: want supported, nlink 1", r.Link)
			}
			wantStatus(t, r, "delete-open", doctor.OK)
			if r.Clock.MtimeResolutionMS != 1000 {
				t.Errorf("mtime resolution %v ms, want 1000 (SFTP has whole seconds)", r.Clock.MtimeResolutionMS)
			}
			wantStatus(t, r, "lease", doctor.OK)
			lc := r.Check("lease")
			if peer == "" {
				// Whether this mount caches is invisible from one
				// mount: the lease is judged against sshfs's default.
				if !strings.Contains(lc.Detail, "sshfs's default client cache") {
					t.Errorf("lease detail %q: want it judged against sshfs's default cache", lc.Detail)
				}
			} else if r.Visibility.MaxMS > 1000 {
				t.Errorf("tuned sshfs: a change took %.0f ms to show on the other mount", r.Visibility.MaxMS)
			}
		})
	}
	// A 10 s lease on one mount: whether the mount uses sshfs's default
	// caches (20 s) cannot be seen from one mount, so doctor warns (with
	// the mount options as a fix) rather than fails.
	r := run(t, a, doctor.Options{Lease: 10 * time.Second, Rounds: 5})
	c := wantStatus(t, r, "lease", doctor.Warn)
	if !r.OK || !strings.Contains(c.Fix, "dir_cache=no") {
		t.Errorf("10 s lease on one sshfs mount: ok=%v, fix %q", r.OK, c.Fix)
	}
}

// sshfs with its default caches: a new entry stays out of the other
// client's listing for up to 20 s. The default lease covers that; 10 s
// does not.
func TestSFTPCaching(t *testing.T) {
	sh := sharetest.StartSFTP(t, true)
	a, b := shareDirs(t, sh)
	r := run(t, a, doctor.Options{Peer: b})
	commonShare(t, r, "sshfs")
	if r.Visibility.ListingMS < 1000 {
		t.Errorf("listing showed a new entry after %.0f ms through a caching sshfs; want the cache (seconds) measured", r.Visibility.ListingMS)
	}
	wantStatus(t, r, "lease", doctor.OK)

	r = run(t, a, doctor.Options{Peer: b, Lease: 10 * time.Second, Rounds: 5})
	c := wantStatus(t, r, "lease", doctor.Fail)
	if r.OK || r.Verdict != doctor.Fail {
		t.Errorf("10 s lease with 20 s caches: ok=%v verdict %s", r.OK, r.Verdict)
	}
	if !strings.Contains(c.Fix, "raise --lease to") || !strings.Contains(c.Fix, "attr_timeout=0") {
		t.Errorf("fix %q: want a lease to raise to and the sshfs mount options", c.Fix)
	}
}

func TestNFS(t *testing.T) {
	sh := sharetest.StartNFS(t)
	a, b := shareDirs(t, sh)
	for _, peer := range []string{"", b} {
		t.Run(map[bool]string{true: "one-mount", false: "peer"}[peer == ""], func(t *testing.T) {
			r := run(t, a, doctor.Options{Peer: peer})
			commonShare(t, r, "nfsfuse")
			wantStatus(t, r, "excl", doctor.OK) // GUARDED CREATE
			wantStatus(t, r, "link", doctor.OK)
			if r.Link.NLink != 2 {
				t.Errorf("nlink %d, want 2", r.Link.NLink)
			}
			wantStatus(t, r, "delete-open", doctor.OK) // NFSv3 has no open state
			wantStatus(t, r, "lease", doctor.OK)
			if r.Verdict != doctor.OK {
				t.Errorf("verdict %s, want ok", r.Verdict)
			}
		})
	}
}
