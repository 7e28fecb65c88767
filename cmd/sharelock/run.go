package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"sharelock"
	"sharelock/internal/dialog"
	"sharelock/internal/ident"
	"sharelock/internal/proc"
)

// stopGrace is how long a child gets between the stop request and the kill.
const stopGrace = 10 * time.Second

func cmdRun(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("run", flag.ContinueOnError)
	flags.SetOutput(stderr)
	wait := flags.Duration("wait", 0, "how long to wait for the lock (0: do not wait)")
	lease := flags.Duration("lease", sharelock.DefaultLease, "lease: others take over after this long without a heartbeat (with an etcd store: the etcd lease, default 10s, whole seconds, at least 2s)")
	app := flags.String("app", "", "application name shown to others (default: COMMAND's name)")
	onLost := flags.String("on-lost", "stop", "when the lock is lost: stop (SIGTERM, then kill after 10s) or signal:NAME (e.g. signal:HUP)")
	idleRelease := flags.Duration("idle-release", 0, "opt-in: when COMMAND has been idle this long (no CPU use, PATH unchanged) and someone waits, warn, then stop it and release the lock after --idle-grace")
	idleGrace := flags.Duration("idle-grace", 2*time.Minute, "with --idle-release: how long the warning gives to save and close")
	withDialog := flags.Bool("dialog", false, "also show \"in use\" and \"lock lost\" in a native dialog (Windows, macOS, Linux with zenity or kdialog); exit after it is closed")
	storeURL := storeFlag(flags)
	if err := flags.Parse(args); err != nil {
		return exitUsage
	}
	rest := flags.Args()
	// The "--" is required: without it, a flag written after PATH
	// ("run db --wait 5s -- cmd") would be run as the command.
	if len(rest) < 2 || rest[1] != "--" {
		fmt.Fprintln(stderr, "sharelock run: need [FLAGS] PATH -- COMMAND [ARGS...] (flags go before PATH)")
		return exitUsage
	}
	path, cmdArgs := rest[0], rest[2:]
	if len(cmdArgs) == 0 {
		fmt.Fprintln(stderr, "sharelock run: missing COMMAND after --")
		return exitUsage
	}
	lostSig, err := parseOnLost(*onLost)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock run: %v\n", err)
		return exitUsage
	}
	name := *app
	if name == "" {
		name = baseName(cmdArgs[0])
	}
	if *idleRelease < 0 || *idleGrace <= 0 {
		fmt.Fprintln(stderr, "sharelock run: --idle-release must be positive (or 0: off) and --idle-grace positive")
		return exitUsage
	}
	// Before any signal is taken over: with an etcd store the default
	// build hands over to sharelock-etcd here.
	store, rc := setupStore("run", args, *storeURL, stderr)
	if rc >= 0 {
		return rc
	}
	defer store.close(stderr)

	// Work that the path to the child needs once per process is done on
	// another goroutine meanwhile: each signal.Notify below mostly waits
	// for the runtime's signal thread, and acquiring for the filesystem.
	// First the identity that the lock records (user, host, machine and
	// boot IDs, start time: a dozen small file reads; acquiring waits for
	// it), then Go's one-time pidfd check that starting the child would
	// otherwise do (a short-lived child of its own).
	go func() {
		ident.Self()
		proc.Warm()
	}()

	// Take over the signals that would kill us before taking the lock, so
	// that from then on no signal ends sharelock between acquiring and
	// releasing it: we pass them on and release the lock after the child
	// ends. A signal that was ignored when we started (nohup, a background
	// job) stays ignored, for us and for the child.
	sigs := make(chan os.Signal, 4)
	notify(sigs, forwardedSignals)
	// A store with a connection to close (etcd) may take a while to
	// close, and Ctrl-C must work then: undo the handlers first.
	keep := store.closer == nil
	defer stopNotify(sigs, keep)
	caught := make(chan os.Signal, 4)
	notify(caught, caughtSignals)
	defer stopNotify(caught, keep)

	opts := append(store.opts(), sharelock.WithApp(name))
	leaseSet := false
	flags.Visit(func(f *flag.Flag) { leaseSet = leaseSet || f.Name == "lease" })
	if leaseSet || !store.etcd() {
		// Unset, an etcd store uses its own default (10 s).
		opts = append(opts, sharelock.WithLease(*lease))
	}
	if *idleRelease > 0 {
		opts = append(opts, sharelock.WithIdleRelease(*idleRelease, *idleGrace))
	}
	lock, sig, err := acquireLock(path, *wait, opts, sigs, caught, stderr)
	if err == nil && sig == nil {
		// Runs before store.close: release, then revoke the lease.
		defer func() { _ = lock.Release() }()
	}
	if sig != nil {
		fmt.Fprintf(stderr, "sharelock: %v while waiting for the lock on %s; %s not started\n", sig, path, name)
		return signalStatus(sig)
	}
	if err != nil {
		var le *sharelock.LockedError
		if errors.As(err, &le) {
			fmt.Fprintf(stderr, "sharelock: %s.\n", le.Error())
			if store.etcd() {
				le.Solutions = etcdSolutions(le, store.url)
			}
			for i, s := range le.Solutions {
				fmt.Fprintf(stderr, "  - %s\n", s)
				if i == 0 && *wait <= 0 {
					fmt.Fprintln(stderr, "  - Or run again with --wait 5m to wait for it.")
				}
			}
			if *withDialog {
				// The outcome is decided; the user reads the dialog
				// and closes it (a signal closes it too).
				startDialog(dialog.InUse(le, time.Now())).wait(sigs, caught, stderr)
			}
			return exitLocked
		}
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
		return exitError
	}

	cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(),
		"SHARELOCK_TOKEN="+strconv.FormatUint(lock.Token(), 10),
		"SHARELOCK_PATH="+path)
	child, err := proc.Start(cmd)
	if err != nil {
		if relErr := lock.Release(); relErr != nil {
			fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
		}
		fmt.Fprintf(stderr, "sharelock: cannot start %s: %v\n", cmdArgs[0], err)
		// As shells do: 127 not found, 126 found but not executable.
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 127
		}
		return 126
	}
	childDone := child.Done()

	lost := false
	lostCh := lock.Lost()
	notices := lock.Notices()
	var lostDialog, noticeDialog *pendingDialog
	defer func() {
		if noticeDialog != nil {
			noticeDialog.cancel()
		}
	}()
	var act *activity
	var sampleC <-chan time.Time
	if *idleRelease > 0 {
		act = newActivity(child, path, stderr)
		t := time.NewTicker(min(activitySample, *idleRelease/4))
		defer t.Stop()
		sampleC = t.C
	}
	var werr error
loop:
	for {
		select {
		case <-childDone:
			werr = child.Wait()
			break loop
		case <-sampleC:
			if act.active() {
				lock.Touch()
			}
		case n := <-notices:
			var m dialog.Message
			switch n.Kind {
			case sharelock.NoticeRequest:
				m = dialog.Request(n, path, name)
			case sharelock.NoticeIdle:
				m = dialog.Idle(n, path, name, *idleRelease, time.Now())
			default:
				continue
			}
			fmt.Fprintf(stderr, "sharelock: %s\n", strings.ReplaceAll(m.Body, "\n\n", " — "))
			if *withDialog && (noticeDialog == nil || noticeDialog.ended()) {
				// One notice dialog at a time; it does not hold up
				// the command, and closes when sharelock ends.
				noticeDialog = startDialog(m)
			}
		case s := <-sigs:
			_ = child.Signal(s)
		case <-caught:
		case <-lostCh:
			// A closed channel is always ready: stop selecting on it.
			lostCh = nil
			lost = true
			fmt.Fprintf(stderr, "sharelock: %v\n", lock.Err())
			outcome, sigName := dialog.Stopped, ""
			if lostSig == nil {
				fmt.Fprintf(stderr, "sharelock: stopping %s (the lock no longer protects it)\n", name)
				go child.Stop(stopGrace)
			} else {
				fmt.Fprintf(stderr, "sharelock: sending %v to %s\n", lostSig, name)
				_ = child.Signal(lostSig)
				outcome, sigName = dialog.Signalled, lostSig.String()
			}
			if *withDialog {
				// The stop is under way already; the dialog runs on
				// its own and is waited for only after the child has
				// ended and the lock is released.
				lostDialog = startDialog(dialog.Lost(lostErrorOf(lock.Err(), path), name, outcome, sigName))
			}
		}
	}
	relErr := lock.Release()
	code := exitCode(werr)
	if lost || errors.Is(relErr, sharelock.ErrLost) {
		if !lost {
			fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
			if *withDialog {
				lostDialog = startDialog(dialog.Lost(lostErrorOf(relErr, path), name, dialog.AlreadyEnded, ""))
			}
		}
		lostDialog.wait(sigs, caught, stderr)
		return exitLost
	}
	if relErr != nil {
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(relErr))
		if code == 0 {
			code = exitError
		}
	}
	return code
}

// acquireLock takes the lock for path, waiting up to wait (not at all if
// wait <= 0). A signal on sigs or caught ends the wait: acquireLock then
// returns that signal and holds no lock. While it waits, and stderr is a
// terminal, it shows a progress line there (see waitProgress), cleared
// before it returns.
func acquireLock(path string, wait time.Duration, opts []sharelock.Option, sigs, caught <-chan os.Signal, stderr io.Writer) (*sharelock.Lock, os.Signal, error) {
	type result struct {
		lock *sharelock.Lock
		err  error
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var prog *waitProgress
	if wait > 0 {
		prog = startWaitProgress(ctx, stderr, path, wait, opts)
	}
	// Runs before the caller prints anything: the line is gone by then.
	defer prog.stop()
	done := make(chan result, 1)
	go func() {
		var r result
		if wait > 0 {
			wctx, wcancel := context.WithTimeout(ctx, wait)
			r.lock, r.err = sharelock.Acquire(wctx, path, opts...)
			wcancel()
		} else {
			r.lock, r.err = sharelock.TryAcquire(ctx, path, opts...)
		}
		done <- r
	}()
	var sig os.Signal
	select {
	case r := <-done:
		return r.lock, nil, r.err
	case sig = <-sigs:
	case sig = <-caught:
	}
	prog.stop()
	// Cancelled, the library returns promptly (each filesystem call is
	// bounded); a lock it claimed meanwhile is released.
	cancel()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case r := <-done:
		if r.lock != nil {
			_ = r.lock.Release()
		}
	case <-t.C:
	}
	return nil, sig, nil
}

// notify relays the signals in sigs to c, except those that were ignored
// when sharelock started: those stay ignored, and so the child inherits
// them ignored (nohup). signal.Notify with no signals would relay all.
func notify(c chan<- os.Signal, sigs []os.Signal) {
	for _, s := range sigs {
		if !signal.Ignored(s) {
			signal.Notify(c, s)
		}
	}
}

// exitAfterCommand is set by main: the process ends as soon as the command
// returns. cmdRun then leaves its signal handlers in place rather than
// undoing them with signal.Stop, which hands each signal to the runtime's
// signal thread and waits for its answer (tens of µs apiece) just before the
// exit drops them anyway; a signal that comes in that last moment (after
// the release, before exit) is caught and ignored. Not with a store that
// has a connection to close (stopNotify). Tests, which call cli in the
// test process, keep it false and get their handlers back.
var exitAfterCommand bool

// stopNotify undoes notify for c unless the process is about to exit
// (exitAfterCommand) and keep is set: nothing that can block comes after
// the command (the folder store has nothing to close).
func stopNotify(c chan<- os.Signal, keep bool) {
	if !exitAfterCommand || !keep {
		signal.Stop(c)
	}
}

// signalStatus is the exit status for ending because of sig: 128+N, as
// shells report a process killed by signal N.
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return exitError
}

// errText renders err for a "sharelock: " line without repeating the
// prefix that the library's own errors carry.
func errText(err error) string {
	return strings.TrimPrefix(err.Error(), "sharelock: ")
}

func parseOnLost(s string) (os.Signal, error) {
	if s == "stop" {
		return nil, nil
	}
	if name, ok := strings.CutPrefix(s, "signal:"); ok {
		if sig := signalByName(name); sig != nil {
			return sig, nil
		}
		return nil, fmt.Errorf("unknown signal %q in --on-lost", name)
	}
	return nil, fmt.Errorf("--on-lost must be stop or signal:NAME, not %q", s)
}

// exitCode maps the child's end to our exit status (128+N for a signal, as shells do).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if c := signalExitCode(ee); c >= 0 {
			return c
		}
		return ee.ExitCode()
	}
	return exitError
}

func baseName(p string) string {
	i := strings.LastIndexAny(p, `/\`)
	return p[i+1:]
}

// lostErrorOf returns the *LostError in err, or one that carries err's text
// as the reason.
func lostErrorOf(err error, path string) *sharelock.LostError {
	var le *sharelock.LostError
	if errors.As(err, &le) {
		return le
	}
	if err == nil {
		return &sharelock.LostError{Path: path}
	}
	return &sharelock.LostError{Path: path, Reason: errText(err)}
}

// pendingDialog is a native dialog being shown (see internal/dialog).
type pendingDialog struct {
	cancel context.CancelFunc
	done   chan error
}

// startDialog shows m in a native dialog without waiting for it.
func startDialog(m dialog.Message) *pendingDialog {
	ctx, cancel := context.WithCancel(context.Background())
	d := &pendingDialog{cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- dialog.Show(ctx, m) }()
	return d
}

// ended reports whether the dialog was closed (or could not be shown).
func (d *pendingDialog) ended() bool {
	select {
	case err := <-d.done:
		d.done <- err // keep it for wait
		return true
	default:
		return false
	}
}

// wait waits until the user closed the dialog; a signal on sigs or caught
// closes it instead. Where no dialog can be shown it returns at once and
// says nothing (the message is on stderr already); a dialog program that
// failed is reported on stderr. A nil d is no dialog.
func (d *pendingDialog) wait(sigs, caught <-chan os.Signal, stderr io.Writer) {
	if d == nil {
		return
	}
	defer d.cancel()
	var err error
	select {
	case err = <-d.done:
	case <-sigs:
		err = d.close()
	case <-caught:
		err = d.close()
	}
	if err != nil && !errors.Is(err, dialog.ErrUnavailable) && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "sharelock: could not show the dialog: %v\n", err)
	}
}

// close closes the dialog (a signal came) and returns its end, or nil if it
// does not end promptly: it then ends with the process.
func (d *pendingDialog) close() error {
	d.cancel()
	select {
	case err := <-d.done:
		return err
	case <-time.After(2 * time.Second):
		return nil
	}
}

// waitProgress is the line that run --wait keeps up to date on a terminal
// while it waits for the lock, rewritten in place about once a second:
//
//	sharelock: waiting for alice on FRONTDESK-PC (wems.exe) — 12 s of 1 min…
//
// The holder comes from Inspect, asked at once and every few seconds;
// "waiting for the lock on PATH" while it is not known. The first line is
// drawn after a second, so that a lock taken at once shows nothing. A nil
// *waitProgress shows nothing.
type waitProgress struct {
	out   *os.File
	path  string
	opts  []sharelock.Option // the store
	total time.Duration
	start time.Time

	mu  sync.Mutex
	who string // the holder as last inspected; "" if not known

	cancel   context.CancelFunc
	quit     chan struct{}
	painted  chan struct{} // closed when the painter has ended
	stopOnce sync.Once
}

// progressTick is how often the progress line is redrawn; progressInspect
// how often the holder is looked up again (each look is a few round trips
// on a share).
const (
	progressTick    = time.Second
	progressInspect = 5 * time.Second
)

// startWaitProgress starts the progress line on stderr for a wait of up to
// total, or returns nil if stderr is not a terminal: then nothing of it is
// ever written. It ends when stop is called or ctx ends.
func startWaitProgress(ctx context.Context, stderr io.Writer, path string, total time.Duration, opts []sharelock.Option) *waitProgress {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &waitProgress{out: f, path: path, opts: opts, total: total, start: time.Now(),
		cancel: cancel, quit: make(chan struct{}), painted: make(chan struct{})}
	go p.inspect(ctx)
	go p.paint(ctx)
	return p
}

// inspect keeps p.who up to date. It never writes to the terminal.
func (p *waitProgress) inspect(ctx context.Context) {
	t := time.NewTicker(progressInspect)
	defer t.Stop()
	for {
		if info, err := sharelock.Inspect(ctx, p.path, p.opts...); err == nil {
			who := ""
			if info.State != sharelock.Free && info.Holder != nil {
				who = info.Holder.Who()
			}
			p.mu.Lock()
			p.who = who
			p.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// paint redraws the line every progressTick and clears it when told to stop.
func (p *waitProgress) paint(ctx context.Context) {
	defer close(p.painted)
	t := time.NewTicker(progressTick)
	defer t.Stop()
	shown := 0 // runes of our line now on the terminal
	for {
		select {
		case <-p.quit:
		case <-ctx.Done():
		case <-t.C:
			p.mu.Lock()
			who := p.who
			p.mu.Unlock()
			w, _, err := term.GetSize(int(p.out.Fd()))
			if err != nil || w <= 0 {
				w = 80
			}
			line := progressLine(p.path, who, time.Since(p.start), p.total, w)
			n := utf8.RuneCountInString(line)
			pad := max(shown-n, 0)
			_, _ = io.WriteString(p.out, "\r"+line+strings.Repeat(" ", pad))
			shown = n
			continue
		}
		if shown > 0 {
			_, _ = io.WriteString(p.out, "\r"+strings.Repeat(" ", shown)+"\r")
		}
		return
	}
}

// stop ends the progress line and clears it from the terminal; it returns
// once nothing more will be written. Safe to call more than once.
func (p *waitProgress) stop() {
	if p == nil {
		return
	}
	p.stopOnce.Do(func() {
		close(p.quit)
		<-p.painted
		p.cancel()
	})
}

// progressLine renders the progress line, cut to fit width columns (one
// less, so that the cursor stays on the line): "sharelock: waiting for WHO
// — 12 s of 60 s…", or "waiting for the lock on PATH" if who is "".
func progressLine(path, who string, elapsed, total time.Duration, width int) string {
	target := who
	if target == "" {
		target = "the lock on " + path
	}
	line := fmt.Sprintf("sharelock: waiting for %s — %s of %s…", target, durText(elapsed), durText(total))
	if limit := width - 1; limit > 0 && utf8.RuneCountInString(line) > limit {
		r := []rune(line)
		line = string(r[:max(limit-1, 0)]) + "…"
	}
	return line
}

// durText renders d in whole seconds: "12 s" below 2 minutes, then "5 min"
// or "2 min 5 s".
func durText(d time.Duration) string {
	s := int(d / time.Second)
	if d < 2*time.Minute {
		return fmt.Sprintf("%d s", s)
	}
	if s%60 == 0 {
		return fmt.Sprintf("%d min", s/60)
	}
	return fmt.Sprintf("%d min %d s", s/60, s%60)
}
