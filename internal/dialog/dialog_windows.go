package dialog

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sys/windows"
)

// show calls MessageBoxW (user32.dll) with an error icon and one OK button,
// topmost and brought to the foreground so that it is not hidden behind the
// window that started the program. MessageBoxW runs its own message loop on
// a locked OS thread. When ctx ends first, show returns ctx's error and
// leaves the box to end with the process.
func show(ctx context.Context, m Message) error {
	title, err := windows.UTF16PtrFromString(m.Title)
	if err != nil {
		return fmt.Errorf("dialog title: %w", err)
	}
	body, err := windows.UTF16PtrFromString(m.Body)
	if err != nil {
		return fmt.Errorf("dialog text: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		style := uint32(windows.MB_OK | windows.MB_ICONERROR | windows.MB_SETFOREGROUND | windows.MB_TOPMOST)
		if m.Warning {
			style = windows.MB_OK | windows.MB_ICONWARNING | windows.MB_SETFOREGROUND | windows.MB_TOPMOST
		}
		ret, err := windows.MessageBox(0, body, title, style)
		if ret == 0 {
			done <- fmt.Errorf("MessageBoxW: %w", err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
