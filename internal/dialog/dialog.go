// Package dialog shows sharelock's messages to people who started a program
// from a desktop rather than a terminal: "the database is in use by alice"
// and "the lock was lost" as a native error dialog with one OK button.
//
// Building a message (InUse, Lost) is portable and pure. Showing it (Show)
// is per OS: MessageBoxW on Windows, osascript on macOS, zenity or kdialog
// on Linux and the BSDs when a display is available. Where no dialog can be
// shown, Show returns ErrUnavailable and the caller keeps to stderr.
package dialog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"sharelock/internal/core"
)

// ErrUnavailable reports that no native dialog can be shown here: no
// display, no helper program (zenity, kdialog, osascript), or an OS without
// dialogs. It is not a failure: the message is on stderr already.
var ErrUnavailable = errors.New("no native dialog available")

// Message is a dialog's text. Body may hold several lines ("\n"); it is
// always shown as plain text, never as markup.
type Message struct {
	Title string
	Body  string
	// Warning shows a warning icon instead of the error icon (notices
	// that ask the user to act, rather than report a failure).
	Warning bool
}

// Title of the dialog shown when the file is in use by someone else.
const TitleInUse = "Database unavailable"

// Title of the dialog shown when the lock was lost while the program ran.
const TitleLost = "Lock lost"

// InUse builds the message for a refused acquisition from e's holder and
// Solutions (core.DefaultSolutions when e has none):
//
//	data/wems.db is in use by alice on FRONTDESK-PC (wems.exe) since 09:12.
//
//	Wait for alice to close it, then try again.
//	If nobody is using it, an administrator can release it: sharelock break --reason "..." data/wems.db
//	Make sure everyone has write access to the folder that holds it.
//
// now decides whether "since" shows a time of day (same day) or a date too;
// times are shown in the local time zone.
func InUse(e *core.LockedError, now time.Time) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is in use by %s", e.Path, e.Holder.Who())
	if e.Holder != nil && !e.Holder.Since.IsZero() {
		fmt.Fprintf(&b, " since %s", sinceText(e.Holder.Since, now))
	}
	b.WriteString(".")
	if e.Stale {
		b.WriteString(" It shows no sign of life, but it could not be taken over in time.")
	}
	sol := e.Solutions
	if len(sol) == 0 {
		sol = core.DefaultSolutions(e.Path, e.Holder)
	}
	b.WriteString("\n\n")
	b.WriteString(strings.Join(sol, "\n"))
	return Message{Title: TitleInUse, Body: b.String()}
}

// Outcome says what sharelock did to the program when its lock was lost.
type Outcome int

const (
	// Stopped: the program was asked to end, and killed if it did not.
	Stopped Outcome = iota
	// Signalled: the program was sent a signal (--on-lost signal:NAME) and
	// left to react to it.
	Signalled
	// AlreadyEnded: the loss was noticed only after the program had ended.
	AlreadyEnded
)

// Lost builds the message for a lock lost while program (its name, as shown
// to others) ran: the path and token, why it was lost (e.Reason), and what
// happened to the program. signal names the signal sent for Signalled
// ("hangup"); it is ignored otherwise. A nil e gives a message without a
// reason.
//
//	Lock lost — data/wems.db (token 7): taken over by bob on PC-3 (token 8).
//
//	wems.exe was stopped: without the lock it could overwrite someone else's changes.
//
//	Start it again to take the lock anew. If this keeps happening, check the
//	connection to the shared folder.
func Lost(e *core.LostError, program string, o Outcome, signal string) Message {
	var b strings.Builder
	if e == nil {
		b.WriteString("Lock lost.")
	} else {
		fmt.Fprintf(&b, "Lock lost — %s", e.Path)
		if e.Token != 0 {
			fmt.Fprintf(&b, " (token %d)", e.Token)
		}
		if r := strings.TrimSpace(e.Reason); r != "" {
			fmt.Fprintf(&b, ": %s", strings.TrimSuffix(r, "."))
		}
		b.WriteString(".")
	}
	b.WriteString("\n\n")
	switch o {
	case Stopped:
		fmt.Fprintf(&b, "%s was stopped: without the lock it could overwrite someone else's changes.", program)
	case Signalled:
		fmt.Fprintf(&b, "%s was sent the signal %q and may still be running without the lock.", program, signal)
	case AlreadyEnded:
		fmt.Fprintf(&b, "%s had already ended when this was noticed; its last changes may not have been protected by the lock.", program)
	}
	b.WriteString("\n\nStart it again to take the lock anew. If this keeps happening, check the connection to the shared folder.")
	return Message{Title: TitleLost, Body: b.String()}
}

// Show shows m as a modal error dialog with a single OK button and returns
// when the user has closed it, or when ctx ends (the dialog is then closed
// where the OS allows it, and ctx's error returned). It returns
// ErrUnavailable, at once, where no dialog can be shown; any other error
// means a dialog helper was there but failed.
func Show(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// No OS takes a NUL inside a C string or an argument; drop any.
	m.Title = strings.ReplaceAll(m.Title, "\x00", "")
	m.Body = strings.ReplaceAll(m.Body, "\x00", "")
	return show(ctx, m)
}

// sinceText renders t as "09:12" when it is on now's day, else "2026-11-26 09:12".
func sinceText(t, now time.Time) string {
	lt, ln := t.Local(), now.Local()
	if lt.Year() == ln.Year() && lt.YearDay() == ln.YearDay() {
		return lt.Format("15:04")
	}
	return lt.Format("2006-01-02 15:04")
}

// zenityArgs is the argv (after "zenity") that shows m. --no-markup: zenity
// would otherwise read the text as Pango markup ("<b>", "&"); --no-wrap is
// not used, so that long paths wrap instead of widening the window past the
// screen.
func zenityArgs(m Message) []string {
	kind := "--error"
	if m.Warning {
		kind = "--warning"
	}
	return []string{kind, "--no-markup", "--title", m.Title, "--text", m.Body}
}

// kdialogArgs is the argv (after "kdialog") that shows m. kdialog takes the
// text as one argument; no shell is involved.
func kdialogArgs(m Message) []string {
	kind := "--error"
	if m.Warning {
		kind = "--sorry"
	}
	return []string{"--title", m.Title, kind, m.Body}
}

// osascriptScript shows the run handler's two arguments (title, body) in a
// dialog with a stop icon and one OK button. The text reaches AppleScript
// as argv, never as source, so it cannot inject AppleScript.
var osascriptScript = []string{
	"on run argv",
	`display dialog (item 2 of argv) with title (item 1 of argv) with icon stop buttons {"OK"} default button "OK"`,
	"end run",
}

// osascriptWarning is osascriptScript with the caution icon.
var osascriptWarning = []string{
	"on run argv",
	`display dialog (item 2 of argv) with title (item 1 of argv) with icon caution buttons {"OK"} default button "OK"`,
	"end run",
}

// osascriptArgs is the argv (after "osascript") that shows m: the script as
// -e lines, then the title and the body as the script's arguments. The
// title comes first and never starts with "-", so osascript does not take
// the arguments for options.
func osascriptArgs(m Message) []string {
	var a []string
	script := osascriptScript
	if m.Warning {
		script = osascriptWarning
	}
	for _, line := range script {
		a = append(a, "-e", line)
	}
	title := m.Title
	if title == "" || strings.HasPrefix(title, "-") {
		title = "sharelock " + title
	}
	return append(a, title, m.Body)
}
