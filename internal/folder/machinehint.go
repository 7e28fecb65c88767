package folder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Machine hints: a process that releases a lock on a share leaves, in a
// small file on this machine's local disk, the generation it released and
// when it last saw that nothing newer existed. The next process on the same
// machine that acquires the lock starts from there, as a process does from
// its own release (hint.released): it claims gen+1 at once instead of
// listing the lock folder and reading the head first — 3 round trips to the
// file server instead of 4 (5 once the lock has a q/ folder).
//
// Why it is safe: a released generation stays released, so "gen+1 does not
// exist yet" is all a claim of gen+1 needs, and the mkdir of gen+1 decides
// that atomically. The only danger is gen+1 having existed and been
// garbage-collected since (a claim would then reuse a number below the
// head); GC deletes a generation only after the one Keep (64) places later
// is GCMinAge (15 min) old, and a hint is used only within GCMinAge/4 of its
// evidence, as for our own hints. The evidence is a reading of the
// machine's monotonic clock (CLOCK_BOOTTIME on Linux, counting sleep),
// which every process of one boot shares: the file's name includes the
// boot ID, so a hint never outlives the boot that wrote it, and a reading
// in the future is refused. A wrong or torn hint costs round trips (the
// claim finds gen+1 taken and walks forward), never safety.
//
// Hints are kept only for lock folders on network filesystems (where they
// save a round trip; onShare), only with the system clock, and only where
// the OS has a machine-wide monotonic clock (machinehint_linux.go).

// machineHintMagic starts every hint file (format version 1).
const machineHintMagic = "sharelock-hint 1"

// maxHintFiles: when a new hint file makes the folder hold more than this
// many, files not written for a day are removed (they are ours, a cache).
const maxHintFiles = 1000

// machineHintPath names the hint file for lock directory dir, given the
// key of its mount (shareKey): one file per lock folder, mount, machine,
// boot and host name (tests run several simulated machines on one host;
// each keeps its own hints).
func (s *Store) machineHintPath(dir, mountKey string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{abs, mountKey, s.self.MachineID, s.self.BootID, s.self.Host}, "\x00")))
	return filepath.Join(s.hintDir, hex.EncodeToString(sum[:12]))
}

// machineHintFile returns the hint file for dir, or "" if machine hints do
// not apply to it. They apply only to lock folders on shares, and only if
// the hint folder itself is not on one (a stalled home server must not
// stall locking).
func (s *Store) machineHintFile(dir string) string {
	if s.hintDir == "" || s.self.BootID == "" {
		return ""
	}
	key, share := s.mountOf(dir)
	if _, hintDirShared := s.mountOf(s.hintDir); !share || hintDirShared {
		return ""
	}
	return s.machineHintPath(dir, key)
}

// encodeMachineHint is one fixed-length line: magic, generation, evidence
// (nanoseconds of the machine's monotonic clock), the wall clock when the
// hint was written (Unix nanoseconds), CRC-32 of what precedes.
func encodeMachineHint(gen uint64, evidence time.Duration, wall time.Time) []byte {
	body := fmt.Sprintf("%s %020d %020d %020d", machineHintMagic, gen, int64(evidence), wall.UnixNano())
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// decodeMachineHint parses encodeMachineHint's line; ok is false for
// anything else (a torn or foreign file, a foreign generation number).
func decodeMachineHint(b []byte) (gen uint64, evidence time.Duration, wall time.Time, ok bool) {
	line, found := strings.CutSuffix(string(b), "\n")
	if !found {
		return 0, 0, time.Time{}, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return 0, 0, time.Time{}, false
	}
	body, sum := line[:i], line[i+1:]
	if want := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))); sum != want {
		return 0, 0, time.Time{}, false
	}
	f := strings.Fields(strings.TrimPrefix(body, machineHintMagic))
	if !strings.HasPrefix(body, machineHintMagic+" ") || len(f) != 3 {
		return 0, 0, time.Time{}, false
	}
	g, err1 := strconv.ParseUint(f[0], 10, 64)
	e, err2 := strconv.ParseInt(f[1], 10, 64)
	w, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || g == 0 || g >= maxGen || e <= 0 {
		return 0, 0, time.Time{}, false
	}
	return g, time.Duration(e), time.Unix(0, w), true
}

// loadMachineHint returns the released generation another process of this
// machine left for dir, if it is recent enough to claim after without a
// listing (see the comment at the top): by the machine's monotonic clock
// and, against a clock that stopped (a VM or container restored from a
// snapshot), by its wall clock too.
func (s *Store) loadMachineHint(dir string) (hint, bool) {
	p := s.machineHintFile(dir)
	if p == "" {
		return hint{}, false
	}
	f, err := openHint(p)
	if err != nil {
		return hint{}, false
	}
	b := make([]byte, 128)
	n, _ := f.Read(b)
	f.Close()
	gen, ev, wall, ok := decodeMachineHint(b[:n])
	if !ok {
		return hint{}, false
	}
	limit := s.o.GCMinAge / 4
	if age := s.mono() - ev; age < 0 || age >= limit {
		return hint{}, false
	}
	if age := time.Since(wall); age < -time.Second || age >= limit {
		return hint{}, false
	}
	return hint{gen: gen, evidence: ev, released: true}, true
}

// saveMachineHint leaves h (a generation we released) for the next process
// of this machine: written to a new file and renamed over the hint (never
// through a symlink someone left there; a reader sees the old hint or the
// new one). Best effort: a hint that cannot be written costs the next
// process one round trip.
func (s *Store) saveMachineHint(dir string, h hint) {
	p := s.machineHintFile(dir)
	if p == "" {
		return
	}
	if err := os.MkdirAll(s.hintDir, 0o700); err != nil {
		return
	}
	f, err := os.CreateTemp(s.hintDir, ".tmp-*")
	if err != nil {
		return
	}
	_, err = f.Write(encodeMachineHint(h.gen, h.evidence, time.Now()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_, statErr := os.Lstat(p)
		err = os.Rename(f.Name(), p)
		if err == nil && os.IsNotExist(statErr) {
			s.pruneMachineHints()
		}
	}
	if err != nil {
		os.Remove(f.Name())
	}
}

// pruneMachineHints removes hint files not written for a day once the
// folder holds more than maxHintFiles (each lock folder ever used on a share
// leaves one).
func (s *Store) pruneMachineHints() {
	ents, err := os.ReadDir(s.hintDir)
	if err != nil || len(ents) <= maxHintFiles {
		return
	}
	for _, e := range ents {
		if _, err := hex.DecodeString(e.Name()); err != nil || len(e.Name()) != 24 {
			if !strings.HasPrefix(e.Name(), ".tmp-") {
				continue // not a hint file: not ours to remove
			}
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(filepath.Join(s.hintDir, e.Name()))
		}
	}
}

// defaultHintDir is where machine hints live unless Options.HintDir says
// otherwise: the user's cache folder. SHARELOCK_MACHINE_HINTS=off turns
// them off. Called once per Store.
func defaultHintDir() string {
	if os.Getenv("SHARELOCK_MACHINE_HINTS") == "off" {
		return ""
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "sharelock", "hints")
}
