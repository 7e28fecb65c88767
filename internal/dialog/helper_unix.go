//go:build unix

package dialog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// runHelper runs the dialog program path with args and waits until it ends
// (the user closed the dialog) or ctx ends (it is killed and ctx's error
// returned). An exit status in closed, or death by a signal, means the
// dialog was shown and closed; any other end is an error carrying the
// program's stderr. The
// helper's output never reaches sharelock's own stdout or stderr (GTK and
// Qt print warnings there).
func runHelper(ctx context.Context, path string, args []string, closed ...int) error {
	cmd := exec.CommandContext(ctx, path, args...)
	var errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = nil, &errBuf
	// A helper's own child that inherited the pipe must not keep us waiting.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && slices.Contains(closed, ee.ExitCode()) {
		return nil
	}
	// Killed by a signal (Ctrl+C in the terminal reaches the helper too, as
	// it shares our process group): closed, not failed.
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return nil
		}
	}
	if err != nil {
		msg := strings.TrimSpace(errBuf.String())
		if len(msg) > 500 {
			msg = msg[len(msg)-500:]
		}
		if msg != "" {
			return fmt.Errorf("%s: %w: %s", path, err, msg)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
