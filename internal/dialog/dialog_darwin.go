package dialog

import (
	"context"
	"errors"
	"os/exec"
	"strings"
)

// show runs osascript's "display dialog" with a stop icon and one OK button.
// The title and text are passed as the script's arguments (see
// osascriptArgs), so they are never parsed as AppleScript. Without
// osascript, or where AppleScript may not interact with the user (a session
// without a GUI, such as ssh: error -1713), it returns ErrUnavailable.
func show(ctx context.Context, m Message) error {
	p, err := exec.LookPath("osascript")
	if err != nil {
		return ErrUnavailable
	}
	err = runHelper(ctx, p, osascriptArgs(m), 0)
	if err != nil && ctx.Err() == nil && strings.Contains(err.Error(), "(-1713)") {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}
