//go:build linux

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"sharelock"
	"sharelock/etcdstore"
)

// Worker log events, in the order one cycle writes them:
//
//	start                          the process started (pid)
//	store_err                      the etcd store did not open; exits (2)
//	acq → acq_ok(tok) | acq_err    Acquire called → returned
//	read → read_ok(v, vt) | read_err
//	skip(err)                      no write: the record has a newer token
//	                               ("fenced") or Lock.Check failed ("lost")
//	write(v) → write_ok | write_err | unpublished (the lock was lost
//	           before the rename that publishes the write: no effect)
//	go_timeout                     (armed only) no "go" from the agent in
//	                               time; it releases anyway
//	rel → rel_ok | rel_lost | rel_err
//	done                           the stop file appeared; the worker exits
//
// When its agent has armed it (see agent), a worker reports "held TOK DUR"
// on its control socket right after acq_ok and waits for "go TOK" after its
// update, before it releases.
func workerMain() int {
	var c workerConf
	if err := getConf(&c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	lg, err := openLog(workerLog(c.Out, c.W, c.Inc))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer lg.close()
	lg.log(event{E: "start", PID: os.Getpid()})
	lockPath := filepath.Join(c.Dir, lockName)
	recPath := filepath.Join(c.Dir, recordName)
	stop := filepath.Join(c.Out, stopName)
	opts := []sharelock.Option{sharelock.WithApp("chaos"), sharelock.WithLease(c.Lease), sharelock.WithHeartbeat(c.Beat)}
	if c.Store != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		st, err := etcdstore.Open(ctx, c.Store)
		cancel()
		if err != nil {
			lg.log(event{E: "store_err", Err: err.Error()})
			fmt.Fprintln(os.Stderr, "chaos worker:", err)
			return 2
		}
		// Closed only at a clean exit: a killed worker's lease expires on
		// the server.
		defer st.Close()
		lockPath = etcdLockName
		opts = append(opts, sharelock.WithStore(st))
	}
	var ctl *control
	if c.Ctl {
		ctl = newControl(os.NewFile(3, "ctl"))
	}
	var lastDur time.Duration // of the previous update (read to write_ok)
	for {
		if _, err := os.Stat(stop); err == nil {
			lg.log(event{E: "done"})
			return 0
		}
		lg.log(event{E: "acq"})
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
		l, err := sharelock.Acquire(ctx, lockPath, opts...)
		cancel()
		if err != nil {
			lg.log(event{E: "acq_err", Err: err.Error()})
			time.Sleep(50 * time.Millisecond)
			continue
		}
		tok := l.Token()
		lg.log(event{E: "acq_ok", Tok: tok})
		armed := ctl.report(tok, lastDur)
		t0 := time.Now()
		update(lg, l, recPath, tok)
		lastDur = time.Since(t0)
		if c.Hold > 0 {
			time.Sleep(c.Hold)
		}
		if armed && !ctl.waitGo(tok, c.Lease+10*time.Second) {
			lg.log(event{E: "go_timeout", Tok: tok})
		}
		lg.log(event{E: "rel"})
		switch err := l.Release(); {
		case err == nil:
			lg.log(event{E: "rel_ok"})
		case errors.Is(err, sharelock.ErrLost):
			lg.log(event{E: "rel_lost", Err: err.Error()})
		default:
			lg.log(event{E: "rel_err", Err: err.Error()})
		}
	}
}

// control is a worker's end of its agent's control socket.
type control struct {
	f     *os.File
	armed atomic.Bool
	goes  chan uint64 // tokens of "go" lines
}

func newControl(f *os.File) *control {
	c := &control{f: f, goes: make(chan uint64, 16)}
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			switch {
			case len(fs) == 1 && fs[0] == "arm":
				c.armed.Store(true)
			case len(fs) == 1 && fs[0] == "disarm":
				c.armed.Store(false)
			case len(fs) == 2 && fs[0] == "go":
				if tok, err := strconv.ParseUint(fs[1], 10, 64); err == nil {
					c.goes <- tok
				}
			}
		}
		close(c.goes) // the agent is gone: nobody will wait for us
	}()
	return c
}

// report tells the agent, when it armed this worker, that it holds the
// lock with token tok (its previous update took dur); it then must call
// waitGo before releasing.
func (c *control) report(tok uint64, dur time.Duration) bool {
	if c == nil || !c.armed.Load() {
		return false
	}
	if _, err := fmt.Fprintf(c.f, "held %d %d\n", tok, dur.Nanoseconds()); err != nil {
		return false
	}
	return true
}

// waitGo waits for the agent's "go" for token tok, at most limit; false if
// it did not come.
func (c *control) waitGo(tok uint64, limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case t, ok := <-c.goes:
			if !ok {
				return false
			}
			if t == tok {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}

// update reads the shared record, and unless its token is newer than ours
// or our lock is gone, writes value+1 with our token.
func update(lg *logger, l *sharelock.Lock, recPath string, tok uint64) {
	lg.log(event{E: "read"})
	v, vt, err := readRecord(recPath)
	if err != nil {
		lg.log(event{E: "read_err", Err: err.Error()})
		return
	}
	lg.log(event{E: "read_ok", V: v, VT: vt})
	if vt > tok {
		lg.log(event{E: "skip", Err: "fenced", VT: vt})
		return
	}
	if err := l.Check(); err != nil {
		lg.log(event{E: "skip", Err: "lost: " + err.Error()})
		return
	}
	lg.log(event{E: "write", V: v + 1})
	if err := writeRecord(recPath, v+1, tok, l.Check); err != nil {
		if errors.Is(err, errUnpublished) {
			lg.log(event{E: "unpublished", Err: err.Error()})
		} else {
			lg.log(event{E: "write_err", Err: err.Error()})
		}
		return
	}
	lg.log(event{E: "write_ok"})
}

func readRecord(path string) (v int64, tok uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("record %s: %q is not \"VALUE TOKEN\"", path, b)
	}
	v, err1 := strconv.ParseInt(f[0], 10, 64)
	tok, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("record %s: %w", path, err)
	}
	return v, tok, nil
}

// writeRecord replaces the record atomically (temporary file + rename): a
// writer killed half-way leaves the old record, never a torn one. As the
// docs advise, the lock is checked once more right before the rename that
// publishes the write: a holder frozen while writing the temporary file
// then finds its lock lost instead of landing a late write; what is left
// is a freeze between that check and the rename.
var errUnpublished = errors.New("record not published: the lock was lost while writing it")

func writeRecord(path string, v int64, tok uint64, check func() error) error {
	tmp := fmt.Sprintf("%s.tmp.%d", path, tok)
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", v, tok)), 0o644); err != nil {
		return err
	}
	if err := check(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%w: %w", errUnpublished, err)
	}
	return os.Rename(tmp, path)
}
