//go:build unix && !darwin

package dialog

import (
	"context"
	"os"
	"os/exec"
)

// show uses zenity (GNOME, most desktops) or else kdialog (KDE), when a
// display is there ($DISPLAY for X11, $WAYLAND_DISPLAY for Wayland).
// Without a display or either program it returns ErrUnavailable.
func show(ctx context.Context, m Message) error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return ErrUnavailable
	}
	if p, err := exec.LookPath("zenity"); err == nil {
		// 0: OK pressed; 1: closed with Esc or the window's close button.
		return runHelper(ctx, p, zenityArgs(m), 0, 1)
	}
	if p, err := exec.LookPath("kdialog"); err == nil {
		return runHelper(ctx, p, kdialogArgs(m), 0, 1)
	}
	return ErrUnavailable
}
