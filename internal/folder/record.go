package folder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"sharelock/internal/core"
)

// The owner file of a generation (see docs/protocol.md):
//
//	sharelock-owner 1\n
//	state=held     beat=00000000000000000007 at=00000001764201540123\n
//	{"token":7,"kind":"acquire",...}\n
//
// Line 2 has a fixed length, so heartbeats and the release rewrite the whole
// file at offset 0 without changing its size. Line 3 is written once.
const (
	magicLine    = "sharelock-owner 1\n"
	stateWidth   = 8
	numWidth     = 20
	statusLen    = len("state=") + stateWidth + len(" beat=") + numWidth + len(" at=") + numWidth + 1
	headerLen    = len(magicLine) + statusLen
	maxOwnerSize = 64 << 10
)

var (
	errTooBig     = errors.New("file larger than 64 KiB: not a sharelock owner file")
	errNotRegular = errors.New("not a regular file")
)

// Owner-file states, as written by the claimant.
const (
	stHeld     = "held"
	stReleased = "released"
	stLost     = "lost" // the claimant found it had lost the lock
	// stWaiting is the state of a wait-queue ticket (q/<n>/owner, see
	// queue.go). It is never valid in a generation's owner file.
	stWaiting = "waiting"
)

// Generation kinds.
const (
	kindAcquire  = "acquire"
	kindTakeover = "takeover"
	kindBreak    = "break"
	kindVoid     = "void" // a claim abandoned by its claimant; ends nothing, holds nothing
	// kindWait is the kind of a wait-queue ticket record; never valid in a
	// generation's owner file.
	kindWait = "wait"
)

// record is the immutable part of an owner file.
type record struct {
	Token     uint64 `json:"token"`
	Kind      string `json:"kind"`
	User      string `json:"user"`
	Host      string `json:"host"`
	App       string `json:"app,omitempty"`
	PID       int    `json:"pid"`
	MachineID string `json:"machine_id,omitempty"`
	BootID    string `json:"boot_id,omitempty"`
	PIDNS     string `json:"pid_ns,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
	Since     string `json:"since"` // RFC 3339, claimant's wall clock, display only
	LeaseMS   int64  `json:"lease_ms"`
	BeatMS    int64  `json:"heartbeat_ms"`
	Nonce     string `json:"nonce"`
	Reason    string `json:"reason,omitempty"`
	// Broke describes the claim this generation ended (takeover, break).
	Broke *core.Holder `json:"broke,omitempty"`
	// BrokeToken is the token of that claim.
	BrokeToken uint64 `json:"broke_token,omitempty"`
	// PollMS, in a wait-queue ticket only: the longest interval at which
	// the waiter looks at the lock, from which others derive how long to
	// defer to it (see queue.go).
	PollMS int64 `json:"poll_ms,omitempty"`
}

// owner is a parsed owner file.
type owner struct {
	State string
	Beat  uint64
	At    time.Time // claimant's wall clock at the last write (display only)
	Rec   record
}

// encodeOwner renders an owner file. body is the pre-encoded JSON record line
// (with its trailing newline), so heartbeats do not re-encode it.
func encodeOwner(buf []byte, state string, beat uint64, at time.Time, body []byte) []byte {
	buf = append(buf[:0], magicLine...)
	buf = append(buf, "state="...)
	buf = append(buf, state...)
	for i := len(state); i < stateWidth; i++ {
		buf = append(buf, ' ')
	}
	buf = append(buf, " beat="...)
	buf = appendPadded(buf, beat)
	buf = append(buf, " at="...)
	ms := at.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	buf = appendPadded(buf, uint64(ms))
	buf = append(buf, '\n')
	return append(buf, body...)
}

func appendPadded(buf []byte, v uint64) []byte {
	var tmp [numWidth]byte
	s := strconv.AppendUint(tmp[:0], v, 10)
	for i := len(s); i < numWidth; i++ {
		buf = append(buf, '0')
	}
	return append(buf, s...)
}

func encodeRecord(r *record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("sharelock: encoding owner record: %v", err)) // plain struct: cannot fail
	}
	return append(b, '\n')
}

// parseOwner parses a generation's owner file: a ticket record (state
// "waiting", kind "wait") there is an error, so that a generation is never
// judged by a ticket's state.
func parseOwner(b []byte) (*owner, error) {
	o, err := parseAny(b)
	if err == nil && o.Rec.Kind == kindWait {
		return nil, errors.New("a wait-queue ticket record where a lock record belongs")
	}
	return o, err
}

// parseTicket parses a wait-queue ticket's owner file: only a "waiting"
// record is valid there.
func parseTicket(b []byte) (*owner, error) {
	o, err := parseAny(b)
	if err == nil && o.Rec.Kind != kindWait {
		return nil, fmt.Errorf("a %q record where a wait-queue ticket belongs", o.Rec.Kind)
	}
	return o, err
}

// parseAny parses an owner file or a ticket. It never panics; any deviation from the
// format is an error that names what is wrong.
func parseAny(b []byte) (*owner, error) {
	if len(b) > maxOwnerSize {
		return nil, errTooBig
	}
	if !bytes.HasPrefix(b, []byte(magicLine)) {
		if len(b) == 0 {
			return nil, errors.New("empty file (claim not yet written, or a write was cut short)")
		}
		return nil, errors.New("not a sharelock owner file (bad first line)")
	}
	if len(b) < headerLen {
		return nil, errors.New("truncated status line")
	}
	st := b[len(magicLine):headerLen]
	if !bytes.HasPrefix(st, []byte("state=")) || st[len(st)-1] != '\n' {
		return nil, errors.New("malformed status line")
	}
	st = st[len("state="):]
	state := string(bytes.TrimRight(st[:stateWidth], " "))
	switch state {
	case stHeld, stReleased, stLost, stWaiting:
	default:
		return nil, fmt.Errorf("unknown state %q", state)
	}
	st = st[stateWidth:]
	if !bytes.HasPrefix(st, []byte(" beat=")) {
		return nil, errors.New("malformed status line (beat)")
	}
	st = st[len(" beat="):]
	beat, err := parsePadded(st[:numWidth])
	if err != nil {
		return nil, fmt.Errorf("bad beat: %w", err)
	}
	st = st[numWidth:]
	if !bytes.HasPrefix(st, []byte(" at=")) {
		return nil, errors.New("malformed status line (at)")
	}
	st = st[len(" at="):]
	atms, err := parsePadded(st[:numWidth])
	if err != nil {
		return nil, fmt.Errorf("bad time: %w", err)
	}
	if atms > 1<<53 {
		return nil, errors.New("bad time: out of range")
	}
	o := &owner{State: state, Beat: beat, At: time.UnixMilli(int64(atms))}
	body := b[headerLen:]
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, errors.New("truncated record")
	}
	if err := json.Unmarshal(body, &o.Rec); err != nil {
		return nil, fmt.Errorf("bad record: %w", err)
	}
	switch o.Rec.Kind {
	case kindAcquire, kindTakeover, kindBreak, kindVoid, kindWait:
	default:
		return nil, fmt.Errorf("unknown kind %q", o.Rec.Kind)
	}
	if (o.State == stWaiting) != (o.Rec.Kind == kindWait) {
		return nil, fmt.Errorf("state %q does not go with kind %q", o.State, o.Rec.Kind)
	}
	if o.Rec.Token == 0 {
		return nil, errors.New("record without token")
	}
	return o, nil
}

func parsePadded(b []byte) (uint64, error) {
	if len(b) != numWidth {
		return 0, errors.New("wrong width")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a number")
		}
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// holder converts a record to the public holder description.
func (r *record) holder() *core.Holder {
	h := &core.Holder{
		User: r.User, Host: r.Host, PID: r.PID, App: r.App,
		MachineID: r.MachineID, BootID: r.BootID, PIDNS: r.PIDNS, StartTime: r.StartTime,
		Lease:     time.Duration(r.LeaseMS) * time.Millisecond,
		Heartbeat: time.Duration(r.BeatMS) * time.Millisecond,
	}
	if t, err := time.Parse(time.RFC3339Nano, r.Since); err == nil {
		h.Since = t
	}
	return h
}

// maxGen is the largest generation number: 10^18, unreachable in practice.
const maxGen = 1_000_000_000_000_000_000

// genName renders a generation number as a directory name: 20 decimal digits,
// so that names sort in generation order.
func genName(g uint64) string {
	return string(appendPadded(make([]byte, 0, numWidth), g))
}

// parseGenName returns the generation a directory name stands for.
func parseGenName(s string) (uint64, bool) {
	if len(s) != numWidth {
		return 0, false
	}
	g, err := parsePadded([]byte(s))
	// Numbers beyond 10^18 are not ours (a planted name could otherwise
	// make the next token wrap around to 0).
	return g, err == nil && g > 0 && g <= maxGen
}
