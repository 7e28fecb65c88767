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

// machineHintPath names the hint file for lock directory dir: one file per
// lock folder, machine, boot and host name (tests run several simulated
// machines on one host; each keeps its own hints).
func (s *Store) machineHintPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{abs, s.self.MachineID, s.self.BootID, s.self.Host}, "\x00")))
	return filepath.Join(s.hintDir, hex.EncodeToString(sum[:12]))
}

// machineHintsFor reports whether machine hints apply to dir (cached per
// directory: onShare reads the mount table).
func (s *Store) machineHintsFor(dir string) bool {
	if s.hintDir == "" || s.self.BootID == "" {
		return false
	}
	s.mu.Lock()
	v, ok := s.shareDirs[dir]
	s.mu.Unlock()
	if !ok {
		v = s.onShare(dir)
		s.mu.Lock()
		s.shareDirs[dir] = v
		s.mu.Unlock()
	}
	return v
}

// encodeMachineHint is one fixed-length line: magic, generation, evidence
// (nanoseconds of the machine's monotonic clock), CRC-32 of what precedes.
func encodeMachineHint(gen uint64, evidence time.Duration) []byte {
	body := fmt.Sprintf("%s %020d %020d", machineHintMagic, gen, int64(evidence))
	return fmt.Appendf(nil, "%s %08x\n", body, crc32.ChecksumIEEE([]byte(body)))
}

// decodeMachineHint parses encodeMachineHint's line; ok is false for
// anything else (a torn or foreign file).
func decodeMachineHint(b []byte) (gen uint64, evidence time.Duration, ok bool) {
	line, found := strings.CutSuffix(string(b), "\n")
	if !found {
		return 0, 0, false
	}
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return 0, 0, false
	}
	body, sum := line[:i], line[i+1:]
	if want := fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(body))); sum != want {
		return 0, 0, false
	}
	f := strings.Fields(strings.TrimPrefix(body, machineHintMagic))
	if !strings.HasPrefix(body, machineHintMagic+" ") || len(f) != 2 {
		return 0, 0, false
	}
	g, err1 := strconv.ParseUint(f[0], 10, 64)
	e, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || g == 0 || e <= 0 {
		return 0, 0, false
	}
	return g, time.Duration(e), true
}

// loadMachineHint returns the released generation another process of this
// machine left for dir, if it is recent enough to claim after without a
// listing (see the comment at the top).
func (s *Store) loadMachineHint(dir string) (hint, bool) {
	if !s.machineHintsFor(dir) {
		return hint{}, false
	}
	b, err := os.ReadFile(s.machineHintPath(dir))
	if err != nil {
		return hint{}, false
	}
	gen, ev, ok := decodeMachineHint(b)
	if !ok {
		return hint{}, false
	}
	if age := s.mono() - ev; age < 0 || age >= s.o.GCMinAge/4 {
		return hint{}, false
	}
	return hint{gen: gen, evidence: ev, released: true}, true
}

// saveMachineHint leaves h (a generation we released) for the next process
// of this machine. Best effort: a hint that cannot be written costs the
// next process one round trip.
func (s *Store) saveMachineHint(dir string, h hint) {
	if !h.released || !s.machineHintsFor(dir) {
		return
	}
	p := s.machineHintPath(dir)
	data := encodeMachineHint(h.gen, h.evidence)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	created := err == nil
	if os.IsNotExist(err) {
		if os.MkdirAll(s.hintDir, 0o700) != nil {
			return
		}
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		created = err == nil
	}
	if os.IsExist(err) {
		// One write at offset 0 of a fixed-length line: a reader sees the
		// old line, the new one, or (torn) neither — refused by the CRC.
		f, err = os.OpenFile(p, os.O_WRONLY, 0)
	}
	if err != nil {
		return
	}
	_, _ = f.WriteAt(data, 0)
	_ = f.Close()
	if created {
		s.pruneMachineHints()
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
			continue // not a hint file: not ours to remove
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > 24*time.Hour {
			_ = os.Remove(filepath.Join(s.hintDir, e.Name()))
		}
	}
}

// defaultHintDir is where machine hints live unless Options.HintDir says
// otherwise: the user's cache folder. Called once per Store.
func defaultHintDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "sharelock", "hints")
}
