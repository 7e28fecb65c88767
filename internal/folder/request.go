package folder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"sharelock/internal/core"
)

// Release requests (docs/protocol.md, "Asking the holder to release"). A
// request is addressed to one claim: it is the file
//
//	P.lock/<gen>/request-<k>      k = 1, 2, … (created with O_EXCL)
//
// in the holder's own generation directory, so that it ends with the claim
// and garbage collection removes it with the generation. The holder's
// heartbeat probes request-<next> (one lstat per heartbeat), reads it, hands
// it to its program, and answers with request-<k>.seen. The requester
// polls for that answer.
const (
	requestPrefix = "request-"
	seenSuffix    = ".seen"
	requestMagic  = "sharelock-request 1\n"
	seenMagic     = "sharelock-seen 1\n"
	// maxRequests bounds the requests per claim.
	maxRequests = 64
	// maxMessage bounds a request's message, in bytes.
	maxMessage = 1000
	// requestsPerBeat bounds the requests a holder reads per heartbeat.
	requestsPerBeat = 4
	// unreadableBeats: a request still unreadable after this many
	// heartbeats is skipped (answered "unreadable" if possible).
	unreadableBeats = 3
)

func requestName(k int) string { return requestPrefix + strconv.Itoa(k) }

// isRequestFile reports whether name is a request or answer file that
// sharelock creates inside a generation directory.
func isRequestFile(name string) bool {
	rest, ok := strings.CutPrefix(name, requestPrefix)
	if !ok {
		return false
	}
	rest = strings.TrimSuffix(rest, seenSuffix)
	k, err := strconv.Atoi(rest)
	return err == nil && k >= 1 && k <= maxRequests && strconv.Itoa(k) == rest
}

// requestRec is the content of a request file after its magic line.
type requestRec struct {
	User    string `json:"user"`
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	App     string `json:"app,omitempty"`
	Message string `json:"message,omitempty"`
	At      string `json:"at"` // RFC 3339, requester's clock (display only)
	Nonce   string `json:"nonce"`
}

// cleanText makes a message safe to print on a terminal or in a dialog:
// control characters (escape sequences) become spaces, and it is cut to
// maxMessage bytes on a rune boundary.
func cleanText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func parseRequest(b []byte) (*requestRec, error) {
	if len(b) > 4*maxMessage+1024 {
		return nil, errTooBig
	}
	body, ok := bytes.CutPrefix(b, []byte(requestMagic))
	if !ok {
		return nil, errors.New("not a sharelock request")
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, errors.New("truncated request")
	}
	var r requestRec
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("bad request: %w", err)
	}
	r.Message = cleanText(r.Message)
	r.User, r.Host, r.App = cleanText(r.User), cleanText(r.Host), cleanText(r.App)
	return &r, nil
}

func encodeSeen(d core.Delivery, at time.Time) []byte {
	return fmt.Appendf(nil, "%s%s %d\n", seenMagic, d, at.UnixMilli())
}

func parseSeen(b []byte) (core.Delivery, time.Time, error) {
	body, ok := bytes.CutPrefix(b, []byte(seenMagic))
	if !ok {
		return "", time.Time{}, errors.New("not a sharelock answer")
	}
	f := strings.Fields(string(body))
	if len(f) != 2 {
		return "", time.Time{}, errors.New("malformed answer")
	}
	ms, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("malformed answer time: %w", err)
	}
	d := core.Delivery(f[0])
	switch d {
	case core.Delivered, core.NotListening:
	default:
		return "", time.Time{}, fmt.Errorf("unknown answer %q", f[0])
	}
	return d, time.UnixMilli(ms), nil
}

// RequestRelease implements core.Store: it writes a request into the
// current holder's generation and waits for the holder's answer, for at most
// two of its heartbeats plus 2 s (or until ctx ends, or the lock changes
// hands). The result's Delivery says what became of it.
func (s *Store) RequestRelease(ctx context.Context, path, message string) (core.RequestResult, error) {
	res := core.RequestResult{Path: path}
	if len(message) > maxMessage {
		return res, fmt.Errorf("sharelock: request message for %s is %d bytes; the limit is %d", path, len(message), maxMessage)
	}
	dir := LockDir(path)
	_, g, err := s.head(ctx, dir)
	if err != nil {
		return res, err
	}
	v, err := s.look(ctx, dir, g)
	if err != nil {
		return res, err
	}
	res.Token, res.Holder = v.gen, v.holder()
	if v.free() {
		return res, fmt.Errorf("%w: nobody holds %s, nothing to ask", core.ErrNotHeld, path)
	}
	gdir := filepath.Join(dir, genName(g))
	rec := requestRec{
		User: s.self.User, Host: s.self.Host, PID: s.self.PID, App: filepath.Base(os.Args[0]),
		Message: message, At: s.wallNow().UTC().Format(time.RFC3339Nano), Nonce: newNonce(),
	}
	body, _ := json.Marshal(&rec)
	content := append(append([]byte(requestMagic), body...), '\n')
	k := 1
	for ; ; k++ {
		if k > maxRequests {
			return res, fmt.Errorf("sharelock: %d release requests are already waiting for the holder of %s; it will see them at its next heartbeat", maxRequests, path)
		}
		name := filepath.Join(gdir, requestName(k))
		err := s.call(ctx, func() error { return s.o.FS.CreateExcl(name, content) }, nil)
		if err == nil {
			break
		}
		if isExist(err) || (isPerm(err) && s.exists(ctx, name)) {
			continue
		}
		if isNotExist(err) {
			res.Delivery = core.HandedOn // the generation is gone: long released
			return res, nil
		}
		return res, pathErr("write release request", name, err)
	}

	// Wait for the answer.
	beat := DefaultHeartbeat
	if v.own != nil && v.own.Rec.BeatMS > 0 {
		beat = time.Duration(v.own.Rec.BeatMS) * time.Millisecond
	}
	deadline := s.mono() + 2*beat + 2*time.Second
	seen := filepath.Join(gdir, requestName(k)+seenSuffix)
	poll := 20 * time.Millisecond
	for i := 0; ; i++ {
		raw, err := callv(s, ctx, func() ([]byte, error) { return s.o.FS.ReadFile(seen) }, nil)
		if err == nil {
			if d, at, perr := parseSeen(raw); perr == nil {
				res.Delivery, res.SeenAt = d, at
				return res, nil
			}
		}
		if ctx.Err() != nil || s.mono() >= deadline {
			res.Delivery = core.Unconfirmed
			return res, nil
		}
		if i%4 == 3 {
			// Released or taken over meanwhile?
			if nv, err := s.look(ctx, dir, g); err == nil && nv.free() {
				res.Delivery = core.HandedOn
				return res, nil
			}
			if s.exists(ctx, filepath.Join(dir, genName(g+1))) {
				res.Delivery = core.HandedOn
				return res, nil
			}
		}
		t := time.NewTimer(jitter(poll))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		poll = min(poll*3/2, max(beat/4, 20*time.Millisecond), 250*time.Millisecond)
	}
}

// pollRequests is run by the holder's heartbeat: it probes for the next
// request file, reads and answers it (Delivered if the program listens,
// NotListening otherwise) and returns the notices to deliver. Requests that
// stay unreadable for a few heartbeats are skipped.
func (h *held) pollRequests() []core.Notice {
	s := h.s
	gdir := filepath.Dir(h.ownerPath)
	var out []core.Notice
	for n := 0; n < requestsPerBeat && h.reqNext <= maxRequests; n++ {
		name := filepath.Join(gdir, requestName(h.reqNext))
		raw, err := s.o.FS.ReadFile(name)
		if isNotExist(err) {
			return out
		}
		var r *requestRec
		if err == nil {
			r, err = parseRequest(raw)
		}
		if err != nil {
			// Being written, or damaged: try again next beat, a few times.
			h.reqBad++
			if h.reqBad < unreadableBeats {
				return out
			}
		}
		h.reqBad = 0
		h.reqNext++
		if r == nil {
			continue
		}
		d := core.NotListening
		if h.listening.Load() {
			d = core.Delivered
		}
		_ = s.o.FS.CreateExcl(name+seenSuffix, encodeSeen(d, s.wallNow()))
		at, _ := time.Parse(time.RFC3339Nano, r.At)
		out = append(out, core.Notice{
			Kind:    core.NoticeRequest,
			From:    &core.Holder{User: r.User, Host: r.Host, PID: r.PID, App: r.App},
			Message: r.Message,
			At:      at,
		})
	}
	return out
}
