package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"sharelock"
)

// requestJSON is the documented JSON shape of `sharelock request --json`.
type requestJSON struct {
	Path     string      `json:"path"`
	Token    uint64      `json:"token,omitempty"`
	Holder   *holderJSON `json:"holder,omitempty"`
	Delivery string      `json:"delivery,omitempty"` // delivered, not-listening, unconfirmed, handed-on
	SeenAt   string      `json:"seen_at,omitempty"`
	Error    string      `json:"error,omitempty"`
}

// cmdRequest asks the holder of PATH to release it. Exit 0 when the request
// reached the holder's program (or the lock was released meanwhile), 1 when
// it did not (not listening, no answer, nobody holds it, errors).
func cmdRequest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("request", flag.ContinueOnError)
	fs.SetOutput(stderr)
	message := fs.String("message", "", "text shown to the holder (at most 1000 bytes)")
	asJSON := fs.Bool("json", false, "print the outcome as JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for the holder's answer after this long")
	storeURL := storeFlag(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "sharelock request: need exactly one PATH (flags go before it)")
		return exitUsage
	}
	store, code := setupStore("request", args, *storeURL, stderr)
	if code >= 0 {
		return code
	}
	defer store.close(stderr)
	path := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := sharelock.RequestRelease(ctx, path, *message, store.opts()...)
	out := requestJSON{Path: path, Token: res.Token, Delivery: string(res.Delivery)}
	if h := res.Holder; h != nil {
		out.Holder = &holderJSON{User: h.User, Host: h.Host, PID: h.PID, App: h.App}
	}
	if !res.SeenAt.IsZero() {
		out.SeenAt = res.SeenAt.UTC().Format(time.RFC3339)
	}
	code = 0
	if err != nil {
		out.Error = errText(err)
		code = exitError
	} else if res.Delivery != sharelock.Delivered && res.Delivery != sharelock.HandedOn {
		code = exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
		return code
	}
	who := res.Holder.Who()
	switch {
	case errors.Is(err, sharelock.ErrNotHeld):
		fmt.Fprintf(stderr, "sharelock: nobody holds %s: take it with sharelock run.\n", path)
	case err != nil:
		fmt.Fprintf(stderr, "sharelock: %s\n", errText(err))
	case res.Delivery == sharelock.Delivered:
		fmt.Fprintf(stdout, "Asked %s to release %s: their program showed the request at %s.\n", who, path, res.SeenAt.Local().Format("15:04:05"))
	case res.Delivery == sharelock.HandedOn:
		fmt.Fprintf(stdout, "%s was released (or changed hands) before %s answered: try to take it now.\n", path, who)
	case res.Delivery == sharelock.NotListening:
		fmt.Fprintf(stderr, "sharelock: %s saw the request for %s, but its program does not show requests: ask them another way, or wait.\n", who, path)
	default:
		fmt.Fprintf(stderr, "sharelock: no answer from %s about %s: it may be paused, cut off from the share, or run an older sharelock. The request stays for it to see.\n", who, path)
	}
	return code
}
