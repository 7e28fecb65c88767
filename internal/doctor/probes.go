package doctor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// scratchPrefix starts the name of Run's scratch directory.
const scratchPrefix = ".sharelock-doctor-"

// doc is one Run in progress.
type doc struct {
	ctx context.Context
	r   *Report
	o   Options

	a, b    string // the scratch directory through DIR and through the peer (or DIR)
	name    string // its base name
	created []string
	mtimes  []time.Time // of files created through a, for the mtime resolution
}

// makeScratch creates the scratch directory (the write-access check) and,
// with a peer, makes sure the peer shows it.
func (d *doc) makeScratch() error {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("doctor: random name: %w", err)
	}
	d.name = scratchPrefix + hex.EncodeToString(rnd[:])
	d.a = filepath.Join(d.r.Dir, d.name)
	d.b = d.a
	if err := os.Mkdir(d.a, 0o755); err != nil {
		return inputErrorFor(d.r.Dir, err)
	}
	// From here on every error must still remove the scratch directory.
	probe := filepath.Join(d.a, "access")
	token := []byte("sharelock doctor " + d.name + "\n")
	err := d.writeA("access", token)
	if err == nil {
		var got []byte
		got, err = os.ReadFile(probe)
		if err == nil && !bytes.Equal(got, token) {
			err = fmt.Errorf("read back %q, wrote %q", got, token)
		}
	}
	if err != nil {
		d.cleanup()
		return inputErrorFor(d.r.Dir, err)
	}
	if d.r.Peer != "" && d.r.Peer != d.r.Dir {
		b := filepath.Join(d.r.Peer, d.name)
		deadline := time.Now().Add(min(d.o.VisibilityWait, 10*time.Second))
		for {
			got, err := os.ReadFile(filepath.Join(b, "access"))
			if err == nil && bytes.Equal(got, token) {
				break
			}
			if time.Now().After(deadline) || d.ctx.Err() != nil {
				d.cleanup()
				if err == nil {
					err = errors.New("different content")
				}
				return &InputError{Path: d.r.Peer, Err: fmt.Errorf("does not show the folder %s (its scratch file %s: %v)", d.r.Dir, filepath.Join(b, "access"), err),
					Fix: "give as --peer the same shared folder as DIR, reached through another client mount"}
			}
			time.Sleep(20 * time.Millisecond)
		}
		d.b = b
	}
	d.r.add(Check{ID: "access", Status: OK, Title: fmt.Sprintf("write access: created, wrote, read and deleted files and folders in %s", d.r.Dir)})
	return nil
}

// writeA creates (or truncates) name in the scratch directory through DIR
// and records it for clean-up.
func (d *doc) writeA(name string, data []byte) error {
	p := filepath.Join(d.a, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	d.track(name)
	return nil
}

func (d *doc) track(name string) {
	if !slices.Contains(d.created, name) {
		d.created = append(d.created, name)
	}
}

// remove deletes one of our scratch entries (file or directory), retrying
// a while on errors such as EBUSY that a share reports while a handle
// closes.
func (d *doc) remove(name string) error {
	p := filepath.Join(d.a, name)
	var err error
	for i := range 20 {
		err = os.Remove(p)
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			d.created = slices.DeleteFunc(d.created, func(s string) bool { return s == name })
			return nil
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	return err
}

// cleanup removes what Run created, and only that.
func (d *doc) cleanup() {
	var errs []error
	for i := len(d.created) - 1; i >= 0; i-- {
		if err := d.remove(d.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	for i := range 20 {
		if err = os.Remove(d.a); err == nil || errors.Is(err, fs.ErrNotExist) {
			err = nil
			break
		}
		// A FUSE client may still hold a .fuse_hidden file of ours
		// for a moment after the last close.
		time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		d.r.ScratchLeft = d.a
		d.r.add(Check{ID: "cleanup", Status: Warn, Title: "could not remove the scratch folder " + d.a,
			Detail: errors.Join(errs...).Error(),
			Fix:    "delete " + d.a + " by hand (it holds only files sharelock doctor made)"})
	}
}

func (d *doc) runChecks() error {
	steps := []func() error{d.fsCheck, d.races, d.renameCheck, d.linkCheck, d.deleteOpenCheck,
		d.roundTrip, d.clockCheck, d.visibility}
	for _, step := range steps {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	d.leaseCheck()
	return nil
}

// ---- filesystem kind and cloud sync ----

func (d *doc) fsCheck() error {
	info := detectFS(d.r.Dir)
	classify(&info)
	info.Cloud, info.CloudEvidence = detectCloud(d.r.Dir)
	d.r.FS = info
	desc := info.Type
	if info.Subtype != "" && !strings.HasSuffix(info.Type, "."+info.Subtype) {
		desc += " (" + info.Subtype + ")"
	}
	if info.Source != "" {
		desc += " from " + info.Source
	}
	switch info.Kind {
	case "local":
		d.r.add(Check{ID: "filesystem", Status: OK, Title: "filesystem: " + desc + ", local to this computer",
			Detail: "other PCs can reach it only if this computer shares the folder; then run sharelock doctor on them too, through the share"})
	case "network", "fuse":
		what := "a network filesystem"
		if info.Kind == "fuse" {
			what = "a FUSE filesystem (a user-space client, usually of a network share)"
		}
		d.r.add(Check{ID: "filesystem", Status: OK, Title: "filesystem: " + desc + ", " + what})
	case "object-storage":
		d.r.add(Check{ID: "filesystem", Status: Fail, Title: "filesystem: " + desc + ", object storage mounted as a folder",
			Detail: "object stores mounted as folders do not create folders atomically across clients, so two PCs can both take the lock",
			Fix:    "use a folder on a file server (SMB, NFS or SFTP share), not a bucket mount"})
	default:
		d.r.add(Check{ID: "filesystem", Status: Info, Title: "filesystem: " + desc + " (kind unknown to sharelock doctor)"})
	}
	if info.Cloud != "" {
		d.r.add(Check{ID: "cloud", Status: Fail,
			Title:  fmt.Sprintf("cloud sync: the folder is inside a %s folder (%s)", info.Cloud, info.CloudEvidence),
			Detail: info.Cloud + " keeps a copy of the folder on every PC and syncs them later: two PCs can each take the lock in their own copy at the same time",
			Fix:    "use a folder on the file server itself (an SMB, NFS or SFTP share), not a synced folder"})
	} else {
		d.r.add(Check{ID: "cloud", Status: OK, Title: "cloud sync: not inside a known cloud-sync folder (Dropbox, OneDrive, Google Drive, iCloud Drive, Nextcloud, ownCloud, ...)"})
	}
	return nil
}

// ---- races ----

// race runs d.o.Rounds rounds of two creators of one fresh name, one
// through d.a and one through d.b. op creates; it is undone by d.remove.
func (d *doc) race(prefix string, op func(string) error) Race {
	res := Race{Rounds: d.o.Rounds, LoserErrors: map[string]int{}, CrossClient: d.a != d.b}
	for i := range d.o.Rounds {
		if d.ctx.Err() != nil {
			res.Rounds = i
			break
		}
		name := fmt.Sprintf("%s%03d", prefix, i)
		var wg sync.WaitGroup
		var errs [2]error
		start := make(chan struct{})
		for k, side := range []string{d.a, d.b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[k] = op(filepath.Join(side, name))
			}()
		}
		close(start)
		wg.Wait()
		d.track(name)
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			what := errName(err)
			if isPermission(err) {
				// SFTP's lost race: confirm as the protocol does.
				if _, lerr := os.Lstat(filepath.Join(d.a, name)); lerr == nil {
					what += " (exists)"
				}
			}
			res.LoserErrors[what]++
		}
		switch wins {
		case 0:
			res.NoWinner++
		case 2:
			res.DoubleWins++
		}
		if err := d.remove(name); err != nil {
			res.LoserErrors["cleanup: "+errName(err)]++
		}
	}
	return res
}

func createExcl(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func (d *doc) races() error {
	where := "two clients (through DIR and through the peer)"
	if d.a == d.b {
		where = "this client only (pass --peer to race two clients)"
	}
	m := d.race("m", func(p string) error { return os.Mkdir(p, 0o755) })
	d.r.Races.Mkdir = m
	if m.Atomic() {
		c := Check{ID: "mkdir", Status: OK, Title: fmt.Sprintf("mkdir is atomic: exactly one winner in %d of %d races", m.Rounds, m.Rounds),
			Detail: "raced by " + where + "; losers got " + errSummary(m.LoserErrors)}
		d.r.add(c)
	} else {
		d.r.add(Check{ID: "mkdir", Status: Fail,
			Title:  fmt.Sprintf("mkdir is NOT atomic: %d double wins and %d races without a winner in %d", m.DoubleWins, m.NoWinner, m.Rounds),
			Detail: "raced by " + where + "; sharelock claims locks with mkdir, so two programs could hold one lock; losers got " + errSummary(m.LoserErrors),
			Fix:    "use a folder on a different share or mount it with another client (a kernel SMB/NFS client, or sshfs); report the filesystem to the sharelock developers"})
	}
	x := d.race("x", createExcl)
	d.r.Races.Excl = x
	const excFix = "nothing to change for sharelock (it claims with mkdir, not O_EXCL); do not use lock tools that lock by creating a file exclusively (O_EXCL lock files, e.g. Python filelock's SoftFileLock) on this folder"
	switch {
	case !x.Atomic():
		d.r.add(Check{ID: "excl", Status: Warn,
			Title:  fmt.Sprintf("exclusive create (O_EXCL) is NOT atomic: %d double wins and %d races without a winner in %d", x.DoubleWins, x.NoWinner, x.Rounds),
			Detail: "raced by " + where + "; losers got " + errSummary(x.LoserErrors),
			Fix:    excFix})
	case d.r.FS.Subtype == "smbnetfs":
		d.r.add(Check{ID: "excl", Status: Warn,
			Title:  "exclusive create (O_EXCL) is not atomic across clients through smbnetfs (known)",
			Detail: fmt.Sprintf("sharelock's own tests saw both of two smbnetfs clients win the same race in 30-85 of 100 rounds; here all %d races had one winner, raced by %s", x.Rounds, where),
			Fix:    excFix})
	default:
		d.r.add(Check{ID: "excl", Status: OK, Title: fmt.Sprintf("exclusive create (O_EXCL) is atomic: exactly one winner in %d of %d races", x.Rounds, x.Rounds),
			Detail: "raced by " + where + "; losers got " + errSummary(x.LoserErrors)})
	}
	return nil
}

func errSummary(m map[string]int) string {
	if len(m) == 0 {
		return "nothing"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d×", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// ---- rename, link, delete while open ----

func (d *doc) renameCheck() error {
	err := d.writeA("rename-dst", []byte("old\n"))
	if err == nil {
		err = d.writeA("rename-src", []byte("new\n"))
	}
	if err == nil {
		err = os.Rename(filepath.Join(d.a, "rename-src"), filepath.Join(d.a, "rename-dst"))
	}
	if err == nil {
		var got []byte
		got, err = os.ReadFile(filepath.Join(d.b, "rename-dst"))
		if err == nil && string(got) != "new\n" {
			err = fmt.Errorf("after the rename the target reads %q, not the renamed file's %q", got, "new\n")
		}
	}
	if err != nil {
		d.r.Rename = OpResult{Error: errName(err)}
		d.r.add(Check{ID: "rename", Status: Warn, Title: "rename over an existing file does not work: " + errName(err),
			Detail: err.Error(),
			Fix:    "nothing to change for sharelock (it does not rename); programs that save by writing a temporary file and renaming it over the original will fail here"})
		return nil
	}
	d.r.Rename = OpResult{OK: true}
	d.r.add(Check{ID: "rename", Status: OK, Title: "rename over an existing file replaces it"})
	return nil
}

func (d *doc) linkCheck() error {
	if err := d.writeA("link-src", []byte("link\n")); err != nil {
		return fmt.Errorf("doctor: writing %s: %w", filepath.Join(d.a, "link-src"), err)
	}
	const fix = "nothing to change for sharelock (it does not use links); do not use lock tools that rely on hard links and link counts (dotlockfile, liblockfile's NFS-safe locking) on this folder"
	err := os.Link(filepath.Join(d.a, "link-src"), filepath.Join(d.a, "link-dst"))
	if err != nil {
		d.r.Link = LinkResult{Error: errName(err)}
		d.r.add(Check{ID: "link", Status: Warn, Title: "hard links are not supported: " + errName(err), Fix: fix})
		return nil
	}
	d.track("link-dst")
	d.r.Link.Supported = true
	fi, err := os.Lstat(filepath.Join(d.a, "link-src"))
	if err != nil {
		return fmt.Errorf("doctor: lstat after link: %w", err)
	}
	n, ok := nlink(fi)
	d.r.Link.NLink = n
	switch {
	case !ok:
		d.r.add(Check{ID: "link", Status: OK, Title: "hard links work (the link count is not readable on this OS)"})
	case n == 2:
		d.r.add(Check{ID: "link", Status: OK, Title: "hard links work and the link count reads 2"})
	default:
		d.r.add(Check{ID: "link", Status: Warn, Title: fmt.Sprintf("hard links work but the link count reads %d, not 2", n),
			Detail: "lock tools that decide by the link count (the NFS link trick) would get it wrong here",
			Fix:    fix})
	}
	return nil
}

func (d *doc) deleteOpenCheck() error {
	if err := d.writeA("open-file", []byte("open\n")); err != nil {
		return fmt.Errorf("doctor: writing %s: %w", filepath.Join(d.a, "open-file"), err)
	}
	f, err := openShared(filepath.Join(d.b, "open-file"))
	if err != nil {
		return fmt.Errorf("doctor: opening %s: %w", filepath.Join(d.b, "open-file"), err)
	}
	rmErr := os.Remove(filepath.Join(d.a, "open-file"))
	if rmErr == nil {
		// A FUSE client without hard_remove renames a file it has open
		// instead of deleting it.
		if ents, err := os.ReadDir(d.b); err == nil {
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".fuse_hidden") || strings.HasPrefix(e.Name(), ".nfs") {
					d.r.DeleteOpen.Hidden = true
				}
			}
		}
	}
	f.Close()
	if rmErr != nil {
		d.r.DeleteOpen = DeleteOpen{Error: errName(rmErr)}
		d.r.add(Check{ID: "delete-open", Status: Warn,
			Title:  "deleting a file another handle has open fails: " + errName(rmErr),
			Detail: "as on SMB, where open files are protected; sharelock tolerates this (its clean-up retries later)",
			Fix:    "nothing to change for sharelock; programs that delete or replace files others have open will fail here"})
		return nil
	}
	d.r.DeleteOpen.OK = true
	t := Check{ID: "delete-open", Status: OK, Title: "deleting a file another handle has open works"}
	if d.r.DeleteOpen.Hidden {
		t.Detail = "the client kept it as a hidden .fuse_hidden/.nfs file until it was closed"
	}
	d.r.add(t)
	return nil
}

// ---- round trip, clock ----

func (d *doc) roundTrip() error {
	var create, read, del, cycle []time.Duration
	var worst time.Duration
	payload := []byte("sharelock doctor round trip\n")
	for i := range d.o.Cycles {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		name := fmt.Sprintf("rt%02d", i)
		p := filepath.Join(d.a, name)
		t0 := time.Now()
		if err := d.writeA(name, payload); err != nil {
			return fmt.Errorf("doctor: writing %s: %w", p, err)
		}
		t1 := time.Now()
		if _, err := os.ReadFile(p); err != nil {
			return fmt.Errorf("doctor: reading %s: %w", p, err)
		}
		t2 := time.Now()
		if fi, err := os.Stat(p); err == nil {
			d.mtimes = append(d.mtimes, fi.ModTime())
		}
		t3 := time.Now()
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("doctor: deleting %s: %w", p, err)
		}
		t4 := time.Now()
		d.created = slices.DeleteFunc(d.created, func(s string) bool { return s == name })
		create = append(create, t1.Sub(t0))
		read = append(read, t2.Sub(t1))
		del = append(del, t4.Sub(t3))
		cycle = append(cycle, t1.Sub(t0)+t2.Sub(t1)+t4.Sub(t3))
		worst = max(worst, t1.Sub(t0), t2.Sub(t1), t4.Sub(t3))
	}
	rt := RoundTrip{MedianMS: ms(median(cycle) / 3), MaxMS: ms(worst), CreateMS: ms(median(create)),
		ReadMS: ms(median(read)), DeleteMS: ms(median(del)), Cycles: len(cycle)}
	d.r.RoundTrip = rt
	h := HeartbeatFor(d.o.Lease)
	title := fmt.Sprintf("round trip: %s per call (median of %d create/read/delete cycles; slowest call %s)",
		human(fromMS(rt.MedianMS)), rt.Cycles, human(worst))
	detail := fmt.Sprintf("create+write+close %s, open+read %s, delete %s", human(median(create)), human(median(read)), human(median(del)))
	switch {
	case 2*worst >= h:
		d.r.add(Check{ID: "round-trip", Status: Fail, Title: title, Detail: detail + fmt.Sprintf("; a heartbeat (two calls) may not finish within its interval of %s", human(h)),
			Fix: fmt.Sprintf("use a faster (closer) file server, or raise --lease to at least %s", human(roundUp(16*2*worst)))})
	case 2*fromMS(rt.MedianMS) >= h/4:
		d.r.add(Check{ID: "round-trip", Status: Warn, Title: title, Detail: detail + fmt.Sprintf("; heartbeats (every %s) spend much of their interval waiting for the share", human(h)),
			Fix: fmt.Sprintf("raise --lease to at least %s, or use a faster (closer) file server", human(roundUp(64*fromMS(rt.MedianMS)*2)))})
	default:
		d.r.add(Check{ID: "round-trip", Status: OK, Title: title, Detail: detail})
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// roundUp rounds d up to whole seconds (at least 1 s).
func roundUp(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

func (d *doc) clockCheck() error {
	type sample struct {
		before, after, mtime time.Time
	}
	var best *sample
	for i := range 3 {
		name := fmt.Sprintf("clock%d", i)
		p := filepath.Join(d.a, name)
		before := time.Now()
		if err := d.writeA(name, []byte("clock\n")); err != nil {
			return fmt.Errorf("doctor: writing %s: %w", p, err)
		}
		after := time.Now()
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("doctor: stat %s: %w", p, err)
		}
		d.mtimes = append(d.mtimes, fi.ModTime())
		s := &sample{before, after, fi.ModTime()}
		if best == nil || s.after.Sub(s.before) < best.after.Sub(best.before) {
			best = s
		}
		if err := d.remove(name); err != nil {
			return fmt.Errorf("doctor: deleting %s: %w", p, err)
		}
		if i < 2 {
			time.Sleep(7 * time.Millisecond) // different sub-second parts
		}
	}
	res := mtimeResolution(d.mtimes)
	span := best.after.Sub(best.before)
	// The server stamped some time in [before, after]; its stamp was
	// truncated to res.
	mid := best.before.Add(span / 2)
	offset := best.mtime.Add(res / 2).Sub(mid)
	unc := res/2 + span/2
	d.r.Clock = ClockResult{OffsetMS: ms(offset), UncertaintyMS: ms(unc), MtimeResolutionMS: ms(res)}
	abs := offset
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if offset < 0 {
		dir = "behind"
	}
	title := fmt.Sprintf("clock: the file server's clock is %s ± %s %s this machine's (mtime resolution %s)", human(abs), human(unc), dir, human(res))
	if abs > 2*time.Second+unc {
		d.r.add(Check{ID: "clock", Status: Warn, Title: title,
			Detail: "sharelock never compares clocks of different machines for lock decisions, but the times it shows (\"since 09:12\") come from the holder's clock and old-generation clean-up uses the server's",
			Fix:    "synchronise the clocks of this machine and the file server (NTP, Windows Time service)"})
	} else {
		d.r.add(Check{ID: "clock", Status: OK, Title: title})
	}
	return nil
}

// mtimeResolution guesses the granularity of the mtimes seen.
func mtimeResolution(ts []time.Time) time.Duration {
	for _, r := range []time.Duration{time.Second, time.Millisecond, time.Microsecond, 100 * time.Nanosecond, 10 * time.Nanosecond} {
		all := len(ts) > 0
		for _, t := range ts {
			if t.UnixNano()%int64(r) != 0 {
				all = false
				break
			}
		}
		if all {
			return r
		}
	}
	return time.Nanosecond
}

// ---- visibility ----

// visibility changes a file and creates a name through DIR after the
// observing side (the peer, or DIR) has read them, and times how long each
// way of looking takes to see the change.
func (d *doc) visibility() error {
	const old, changed = "version 1\n", "version 2, longer\n"
	if err := d.writeA("vis-file", []byte(old)); err != nil {
		return fmt.Errorf("doctor: writing %s: %w", filepath.Join(d.a, "vis-file"), err)
	}
	file, fresh := filepath.Join(d.b, "vis-file"), filepath.Join(d.b, "vis-new")
	// Prime the observer's caches the way a polling client does.
	os.ReadFile(file)
	os.Stat(file)
	os.Lstat(fresh)
	os.ReadDir(d.b)
	if err := d.writeA("vis-file", []byte(changed)); err != nil {
		return fmt.Errorf("doctor: rewriting %s: %w", filepath.Join(d.a, "vis-file"), err)
	}
	if err := d.writeA("vis-new", []byte("new\n")); err != nil {
		return fmt.Errorf("doctor: writing %s: %w", filepath.Join(d.a, "vis-new"), err)
	}
	t0 := time.Now()
	probes := []struct {
		name string
		seen func() bool
		out  *float64
	}{
		{"content", func() bool { b, err := os.ReadFile(file); return err == nil && string(b) == changed }, &d.r.Visibility.ContentMS},
		{"stat", func() bool { fi, err := os.Stat(file); return err == nil && fi.Size() == int64(len(changed)) }, &d.r.Visibility.StatMS},
		{"new_entry", func() bool { _, err := os.Lstat(fresh); return err == nil }, &d.r.Visibility.NewEntryMS},
		{"listing", func() bool {
			ents, err := os.ReadDir(d.b)
			return err == nil && slices.ContainsFunc(ents, func(e fs.DirEntry) bool { return e.Name() == "vis-new" })
		}, &d.r.Visibility.ListingMS},
	}
	var mu sync.Mutex
	var notSeen []string
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if p.seen() {
					*p.out = ms(time.Since(t0))
					return
				}
				el := time.Since(t0)
				if el > d.o.VisibilityWait || d.ctx.Err() != nil {
					mu.Lock()
					notSeen = append(notSeen, p.name)
					mu.Unlock()
					*p.out = ms(el)
					return
				}
				switch {
				case el < 100*time.Millisecond:
					time.Sleep(2 * time.Millisecond)
				case el < time.Second:
					time.Sleep(20 * time.Millisecond)
				default:
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if err := d.ctx.Err(); err != nil {
		return err
	}
	slices.Sort(notSeen)
	v := &d.r.Visibility
	v.CrossClient = d.a != d.b
	v.NotSeen = notSeen
	v.WaitMS = ms(d.o.VisibilityWait)
	v.MaxMS = max(v.ContentMS, v.StatMS, v.NewEntryMS, v.ListingMS)
	where := "through the peer (another client)"
	if !v.CrossClient {
		where = "through this client again (this measures only this machine's client; pass --peer to measure another client)"
	}
	detail := fmt.Sprintf("open+read %s, stat %s, lookup of a new name %s, listing %s, %s",
		human(fromMS(v.ContentMS)), human(fromMS(v.StatMS)), human(fromMS(v.NewEntryMS)), human(fromMS(v.ListingMS)), where)
	if len(notSeen) > 0 {
		d.r.add(Check{ID: "visibility", Status: Info,
			Title:  fmt.Sprintf("visibility: a change was still not seen by %s after %s", strings.Join(notSeen, ", "), human(d.o.VisibilityWait)),
			Detail: detail})
		return nil
	}
	d.r.add(Check{ID: "visibility", Status: Info,
		Title:  fmt.Sprintf("visibility: changes showed within %s", human(fromMS(v.MaxMS))),
		Detail: detail})
	return nil
}

// ---- lease ----

// knownCaches are client caches that doctor cannot measure from one mount,
// by FUSE subtype or filesystem type: how long they may hide a change by
// default, and how to mount without them.
var knownCaches = map[string]struct {
	staleness time.Duration
	mount     string
}{
	"sshfs": {20 * time.Second, "mount with sshfs -o dir_cache=no,attr_timeout=0,entry_timeout=0,negative_timeout=0"},
}

func (d *doc) leaseCheck() {
	lease := d.o.Lease
	h := HeartbeatFor(lease)
	v := d.r.Visibility
	stale := fromMS(v.MaxMS)
	rtt := fromMS(d.r.RoundTrip.MaxMS)
	basis := "the worst staleness measured"
	var mountFix string
	assumed := false // stale is a known default, not a measurement
	if kc, ok := knownCaches[d.r.FS.Subtype]; ok {
		mountFix = kc.mount
		if !v.CrossClient && kc.staleness > stale {
			stale, assumed = kc.staleness, true
			basis = fmt.Sprintf("%s's default client cache (not measured: no --peer)", d.r.FS.Subtype)
		}
	}
	if len(v.NotSeen) > 0 {
		// The staleness is at least the wait; it may be a known cache's.
		stale = max(stale, d.o.VisibilityWait)
	}
	need := stale + h + 2*rtt
	suggest := roundUp(need * 3 / 2)
	fix := fmt.Sprintf("raise --lease to %s or more (every program using this lock must use the same lease)", human(suggest))
	if len(v.NotSeen) > 0 {
		fix = fmt.Sprintf("raise --lease to %s or more and run sharelock doctor again with it (every program using this lock must use the same lease)", human(suggest))
	}
	if mountFix != "" {
		fix += ", or " + mountFix
	}
	sum := fmt.Sprintf("%s %s + heartbeat %s + 2 round trips %s = %s", basis, human(stale), human(h), human(2*rtt), human(need))
	title := fmt.Sprintf("lease %s (heartbeat every %s)", human(lease), human(h))
	switch {
	case len(v.NotSeen) > 0 && d.o.VisibilityWait >= lease:
		d.r.add(Check{ID: "lease", Status: Fail, Title: title + " is too short: a change stayed invisible for longer than the lease",
			Detail: "an observer could take over from a live holder", Fix: fix})
	case len(v.NotSeen) > 0:
		d.r.add(Check{ID: "lease", Status: Warn, Title: title + fmt.Sprintf(": a change was not seen within %s, so the lease could not be judged", human(d.o.VisibilityWait)),
			Fix: "check that the share is healthy and run sharelock doctor again"})
	case lease < need && assumed:
		// The mount may be tuned; only a peer can tell.
		d.r.add(Check{ID: "lease", Status: Warn, Title: title + fmt.Sprintf(" may be too short: %s caches for %s by default", d.r.FS.Subtype, human(stale)),
			Detail: sum + "; if this share is mounted with the default caches, an observer could take over from a live holder; run doctor with --peer (a second mount) to measure",
			Fix:    fix})
	case lease < need:
		d.r.add(Check{ID: "lease", Status: Fail, Title: title + " is too short for what was seen",
			Detail: sum + "; an observer could take over from a live holder", Fix: fix})
	case lease < need*5/4:
		d.r.add(Check{ID: "lease", Status: Warn, Title: title + " leaves little margin",
			Detail: sum, Fix: fix})
	default:
		d.r.add(Check{ID: "lease", Status: OK, Title: title + " is safe here", Detail: sum})
	}
}
