// Package doctor checks whether a folder can hold a safe sharelock lock: it
// measures, in that folder, the filesystem behaviours the sharelock folder
// protocol (docs/protocol.md) relies on or that are known traps of network
// shares, and says what to fix. It is the library behind `sharelock doctor`.
//
// Run does, in DIR:
//
//   - write access: creates a uniquely named scratch directory
//     ".sharelock-doctor-<random>" and files in it, reads and deletes them;
//   - what filesystem DIR is on (Linux: statfs f_type and the FUSE subtype
//     from /proc/self/mountinfo; Windows: GetDriveTypeW and
//     GetVolumeInformationW; macOS: statfs f_fstypename), and whether DIR is
//     inside a cloud-sync folder (Dropbox, OneDrive, Google Drive, iCloud
//     Drive, Nextcloud, ownCloud, Box, pCloud, MEGA, Resilio Sync), by path
//     component and by marker files such as .dropbox in DIR or a parent;
//   - mkdir atomicity and exclusive-create (O_CREAT|O_EXCL) atomicity: Rounds
//     races of two goroutines creating the same name, counting double wins
//     and rounds without a winner. With Options.Peer (the same folder
//     reached through another client mount) one racer goes through DIR and
//     the other through Peer, which is what two PCs do; without it both go
//     through DIR, and one client's kernel serialises them, so only
//     non-atomicity inside this client can show;
//   - rename over an existing file, hard links (and whether the link count
//     reads 2), delete of a file another handle has open;
//   - the round trip: the median of several create+write+close, open+read
//     and delete cycles, divided by three (about one filesystem call);
//   - the clock offset between this machine and the file server (the mtime
//     of a fresh file against the local clock) and the mtime resolution;
//   - visibility: how long a change made through DIR takes to show through
//     Peer (or through DIR again) to open+read, stat, lstat of a new name and
//     a directory listing, after priming those caches. Without Peer this
//     measures only this client;
//   - whether the lease (Options.Lease, default sharelock's 40 s) is safe:
//     it must exceed the worst staleness seen plus one heartbeat plus two
//     worst round trips.
//
// Contract: Run never creates, changes or deletes anything in DIR but its own
// scratch directory and the entries it made inside it, which it removes
// before returning, also on errors and cancellation (a leftover is reported
// as a warning naming it). It returns an error, and no report, only when the
// checks cannot be completed: an *InputError (DIR or Peer missing, not a
// directory, not writable, read-only, full; Peer not showing DIR) that names
// the path and the fix; a lease outside [MinLease, MaxLease]; the context's
// error; or a filesystem call failing midway (wrapped, naming the path).
// Otherwise every finding, good or bad, is in the Report; Report.OK is false
// exactly when some check has status Fail. Run takes about Rounds×4 + 40
// filesystem calls, plus, for visibility, up to VisibilityWait (a cached
// listing on sshfs: 20 s).
//
// # JSON
//
// A Report marshals (encoding/json) to the object that `sharelock doctor
// --json` prints. Durations are milliseconds (float). Fields:
//
//	dir              the folder checked (absolute)
//	peer             Options.Peer, if given
//	ok               true when the folder can hold a safe lock (no "fail" check)
//	verdict          "ok", "warn" (ok, with warnings) or "fail"
//	lease_ms         the lease judged
//	heartbeat_ms     the heartbeat interval that goes with it (min(lease/8, 5 s))
//	filesystem       {type, magic, subtype, source, mount_point, drive_type,
//	                  kind: "local"|"network"|"fuse"|"object-storage"|"unknown",
//	                  remote: bool, cloud: name of the sync service or "",
//	                  cloud_evidence: the path component or marker file found}
//	round_trip       {median_ms, max_ms, create_ms, read_ms, delete_ms, cycles}
//	races            {mkdir: race, excl: race}; race = {rounds, double_wins,
//	                  no_winner, loser_errors: {errno name: count},
//	                  cross_client: bool (raced through DIR and peer)}
//	rename           {ok, error}
//	link             {supported, nlink (as read after linking; 2 is right), error}
//	delete_open      {ok, error, hidden: the client renamed the file to a
//	                  hidden name (.fuse_hidden…) instead}
//	clock            {offset_ms (server minus local; positive: server ahead),
//	                  uncertainty_ms, mtime_resolution_ms}
//	visibility       {cross_client, content_ms, stat_ms, new_entry_ms,
//	                  listing_ms, max_ms, not_seen: [probe names not seen
//	                  within wait_ms], wait_ms}
//	checks           [{id, status: "ok"|"warn"|"fail"|"info", title, detail, fix}]
//	scratch_left     a scratch path that could not be removed, or absent
//	duration_ms      how long the checks took
//
// Check ids: access, filesystem, cloud, mkdir, excl, rename, link,
// delete-open, round-trip, clock, visibility, lease, cleanup.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"sharelock/internal/folder"
)

// Defaults, mirroring the library's (sharelock.DefaultLease and the
// heartbeat that `sharelock run --lease` derives from a lease).
const (
	DefaultLease     = folder.DefaultLease
	defaultHeartbeat = folder.DefaultHeartbeat
	// DefaultRounds is how many times each race is run.
	DefaultRounds = 50
	// MinLease and MaxLease bound the leases sharelock accepts.
	MinLease = 8 * time.Millisecond
	MaxLease = 24 * time.Hour
	// maxVisibilityWait caps how long a change is waited for.
	maxVisibilityWait = 2 * time.Minute
)

// HeartbeatFor returns the heartbeat interval the library uses with lease
// when none is given: min(lease/8, 5 s) (see folder's normalize).
func HeartbeatFor(lease time.Duration) time.Duration {
	return max(min(lease/8, defaultHeartbeat), time.Millisecond)
}

// Options configures Run. Zero fields take defaults.
type Options struct {
	// Lease to judge (default DefaultLease). Must be within
	// [MinLease, MaxLease].
	Lease time.Duration
	// Rounds per race (default DefaultRounds).
	Rounds int
	// Peer is the same folder as DIR reached through another client mount
	// (for example a second mount of the same share on this machine). When
	// set, races and visibility are measured across the two clients. Run
	// checks that Peer shows the file it wrote through DIR within
	// min(VisibilityWait, 10 s), or returns an *InputError.
	Peer string
	// VisibilityWait bounds how long a change is waited for (default: the
	// lease, at most 2 min). A change not seen by then is reported as not
	// seen.
	VisibilityWait time.Duration
	// Cycles is how many create/read/delete cycles time the round trip
	// (default 9).
	Cycles int
}

// Status of one check.
type Status string

// Statuses, from good to bad. Info is a fact without a judgement.
const (
	OK   Status = "ok"
	Info Status = "info"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Symbol returns the report symbol of s: ✔, ·, ⚠ or ✘.
func (s Status) Symbol() string {
	switch s {
	case OK:
		return "✔"
	case Warn:
		return "⚠"
	case Fail:
		return "✘"
	}
	return "·"
}

// Check is one finding.
type Check struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Title is one line: what was checked and what was found.
	Title string `json:"title"`
	// Detail adds figures or explanation; may be empty.
	Detail string `json:"detail,omitempty"`
	// Fix says what to do; set for every Warn and Fail.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of Run. See the package doc for its JSON form.
type Report struct {
	Dir         string      `json:"dir"`
	Peer        string      `json:"peer,omitempty"`
	OK          bool        `json:"ok"`
	Verdict     Status      `json:"verdict"`
	LeaseMS     float64     `json:"lease_ms"`
	HeartbeatMS float64     `json:"heartbeat_ms"`
	FS          FSInfo      `json:"filesystem"`
	RoundTrip   RoundTrip   `json:"round_trip"`
	Races       Races       `json:"races"`
	Rename      OpResult    `json:"rename"`
	Link        LinkResult  `json:"link"`
	DeleteOpen  DeleteOpen  `json:"delete_open"`
	Clock       ClockResult `json:"clock"`
	Visibility  Visibility  `json:"visibility"`
	Checks      []Check     `json:"checks"`
	ScratchLeft string      `json:"scratch_left,omitempty"`
	DurationMS  float64     `json:"duration_ms"`
}

// FSInfo says what filesystem the folder is on.
type FSInfo struct {
	// Type is the filesystem type as the OS names it ("ext4", "tmpfs",
	// "fuse.sshfs", "nfs4", "cifs", "NTFS", "smbfs", ...).
	Type string `json:"type"`
	// Magic is statfs's f_type on Linux (hex), empty elsewhere.
	Magic string `json:"magic,omitempty"`
	// Subtype is the FUSE subtype ("sshfs", "smbnetfs", ...), if any.
	Subtype string `json:"subtype,omitempty"`
	// Source is what is mounted (server:path, //server/share), if known.
	Source     string `json:"source,omitempty"`
	MountPoint string `json:"mount_point,omitempty"`
	// DriveType is GetDriveTypeW's answer on Windows ("remote", "fixed",
	// ...).
	DriveType string `json:"drive_type,omitempty"`
	// Kind is "local", "network", "fuse", "object-storage" or "unknown".
	Kind   string `json:"kind"`
	Remote bool   `json:"remote"`
	// Cloud names the cloud-sync service the folder belongs to, if any.
	Cloud         string `json:"cloud,omitempty"`
	CloudEvidence string `json:"cloud_evidence,omitempty"`
}

// RoundTrip is the timing of small create/read/delete cycles.
type RoundTrip struct {
	// MedianMS is the median cycle divided by 3: about one call.
	MedianMS float64 `json:"median_ms"`
	// MaxMS is the slowest single call seen.
	MaxMS    float64 `json:"max_ms"`
	CreateMS float64 `json:"create_ms"` // median create+write+close
	ReadMS   float64 `json:"read_ms"`   // median open+read+close
	DeleteMS float64 `json:"delete_ms"` // median unlink
	Cycles   int     `json:"cycles"`
}

// Races holds the two creation races.
type Races struct {
	Mkdir Race `json:"mkdir"`
	Excl  Race `json:"excl"`
}

// Race counts the outcomes of racing two creators of one name.
type Race struct {
	Rounds      int            `json:"rounds"`
	DoubleWins  int            `json:"double_wins"`
	NoWinner    int            `json:"no_winner"`
	LoserErrors map[string]int `json:"loser_errors"`
	CrossClient bool           `json:"cross_client"`
}

// Atomic reports whether every round had exactly one winner.
func (r Race) Atomic() bool { return r.Rounds > 0 && r.DoubleWins == 0 && r.NoWinner == 0 }

// OpResult is whether an operation worked.
type OpResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// LinkResult is the hard-link probe.
type LinkResult struct {
	Supported bool `json:"supported"`
	// NLink is the link count read (lstat) right after linking; 0 if it
	// cannot be read on this OS.
	NLink uint64 `json:"nlink"`
	Error string `json:"error,omitempty"`
}

// DeleteOpen is the delete-while-open probe.
type DeleteOpen struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Hidden: the client renamed the file to a hidden name instead of
	// deleting it (FUSE without hard_remove), which then lingers while the
	// file is open.
	Hidden bool `json:"hidden,omitempty"`
}

// ClockResult compares the file server's clock with ours.
type ClockResult struct {
	OffsetMS          float64 `json:"offset_ms"`
	UncertaintyMS     float64 `json:"uncertainty_ms"`
	MtimeResolutionMS float64 `json:"mtime_resolution_ms"`
}

// Visibility is how long a change took to show to the observing side.
type Visibility struct {
	CrossClient bool     `json:"cross_client"`
	ContentMS   float64  `json:"content_ms"`
	StatMS      float64  `json:"stat_ms"`
	NewEntryMS  float64  `json:"new_entry_ms"`
	ListingMS   float64  `json:"listing_ms"`
	MaxMS       float64  `json:"max_ms"`
	NotSeen     []string `json:"not_seen,omitempty"`
	WaitMS      float64  `json:"wait_ms"`
}

// InputError says DIR (or Peer) cannot be checked, and how to fix that.
type InputError struct {
	Path string
	Err  error
	Fix  string
}

func (e *InputError) Error() string {
	s := fmt.Sprintf("%s: %v", e.Path, e.Err)
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

func (e *InputError) Unwrap() error { return e.Err }

// Run checks dir (see the package doc for what and the contract).
func Run(ctx context.Context, dir string, o Options) (*Report, error) {
	t0 := time.Now()
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.Lease < MinLease || o.Lease > MaxLease {
		return nil, fmt.Errorf("doctor: lease %v outside [%v, %v]", o.Lease, MinLease, MaxLease)
	}
	if o.Rounds <= 0 {
		o.Rounds = DefaultRounds
	}
	if o.Cycles <= 0 {
		o.Cycles = 9
	}
	if o.VisibilityWait <= 0 {
		o.VisibilityWait = min(o.Lease, maxVisibilityWait)
	}
	abs, err := checkDir(dir)
	if err != nil {
		return nil, err
	}
	r := &Report{Dir: abs, LeaseMS: ms(o.Lease), HeartbeatMS: ms(HeartbeatFor(o.Lease))}
	if o.Peer != "" {
		if r.Peer, err = checkDir(o.Peer); err != nil {
			return nil, err
		}
	}
	d := &doc{ctx: ctx, r: r, o: o}
	if err := d.makeScratch(); err != nil {
		return nil, err
	}
	runErr := d.runChecks()
	d.cleanup()
	r.finish()
	r.DurationMS = ms(time.Since(t0))
	if runErr != nil {
		return nil, runErr
	}
	return r, nil
}

// checkDir returns dir's absolute path if it is an existing directory.
func checkDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", &InputError{Path: dir, Err: err}
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &InputError{Path: abs, Err: errors.New("no such folder"),
			Fix: "give the folder that holds (or will hold) the shared file; if it is on a share, check that the share is mounted"}
	case errors.Is(err, fs.ErrPermission):
		return "", &InputError{Path: abs, Err: errors.New("permission denied"),
			Fix: "ask the share's administrator for read and write access to this folder"}
	case err != nil:
		return "", &InputError{Path: abs, Err: err, Fix: "check that the share is reachable and mounted"}
	case !fi.IsDir():
		return "", &InputError{Path: abs, Err: errors.New("not a folder"),
			Fix: fmt.Sprintf("give the folder that holds the file, e.g. %s", filepath.Dir(abs))}
	}
	return abs, nil
}

// inputErrorFor explains why creating something in dir failed.
func inputErrorFor(dir string, err error) error {
	var fix string
	switch {
	case errors.Is(err, fs.ErrPermission):
		fix = "everyone who uses the lock needs permission to create and delete files and folders here: ask the share's administrator for write (modify) access to this folder"
	case errors.Is(err, syscall.EROFS):
		fix = "the folder is read-only (mounted read-only?): mount the share read-write or choose a writable folder"
	case isNoSpace(err):
		fix = "the share is full or over quota: free space or raise the quota"
	default:
		fix = "check that the share is mounted, reachable and writable"
	}
	return &InputError{Path: dir, Err: fmt.Errorf("cannot create entries: %w", err), Fix: fix}
}

// finish sets the verdict from the checks.
func (r *Report) finish() {
	r.Verdict = OK
	for _, c := range r.Checks {
		switch {
		case c.Status == Fail:
			r.Verdict = Fail
		case c.Status == Warn && r.Verdict != Fail:
			r.Verdict = Warn
		}
	}
	r.OK = r.Verdict != Fail
}

// Check returns the check with the given id, or nil.
func (r *Report) Check(id string) *Check {
	for i := range r.Checks {
		if r.Checks[i].ID == id {
			return &r.Checks[i]
		}
	}
	return nil
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMS(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// human formats d for people: "1.4 ms", "21 s".
func human(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f s", d.Seconds())
}
