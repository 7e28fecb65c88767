package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"sharelock/internal/dashboard"
)

// defaultUIListen is where `sharelock ui` listens unless told otherwise:
// loopback only.
const defaultUIListen = "127.0.0.1:8377"

// cmdUI serves the dashboard for a folder until SIGINT/SIGTERM:
//
//	sharelock ui [--listen ADDR] [--admin-file FILE] [--tls-cert FILE --tls-key FILE] DIR
//	sharelock ui hash-password [--name NAME]
//
// Once listening it prints "sharelock ui: serving DIR at URL" on stdout.
func cmdUI(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "hash-password" {
		return cmdHashPassword(args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("ui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", defaultUIListen, "address to listen on (non-loopback needs --admin-file)")
	adminFile := fs.String("admin-file", os.Getenv("SHARELOCK_ADMIN_FILE"), "administrators: NAME:BCRYPT-HASH lines (see `sharelock ui hash-password`); default $SHARELOCK_ADMIN_FILE; none: read-only")
	cert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	key := fs.String("tls-key", "", "private key of --tls-cert (PEM)")
	poll := fs.Duration("poll", time.Second, "how often every lock is inspected")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each access to the share")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 || (*cert == "") != (*key == "") {
		fmt.Fprintln(stderr, "sharelock ui: need exactly one DIR (and --tls-cert with --tls-key)")
		return exitUsage
	}
	dir := fs.Arg(0)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(stderr, "sharelock ui: %s is not a folder I can read: %v\n", dir, err)
		return exitError
	}
	var admins *dashboard.Admins
	if *adminFile != "" {
		a, err := dashboard.ReadAdmins(*adminFile)
		if err != nil {
			fmt.Fprintf(stderr, "sharelock ui: %v\n", err)
			return exitError
		}
		admins = a
	}
	if err := dashboard.CheckListen(*listen, admins != nil); err != nil {
		fmt.Fprintf(stderr, "sharelock ui: %v\n", err)
		return exitUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock ui: %v\n", err)
		return exitError
	}
	srv := dashboard.New(dashboard.Config{Dir: dir, Admins: admins, TLS: *cert != "",
		Watcher: dashboard.WatcherOptions{Poll: *poll, Timeout: *timeout}})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go srv.Run(ctx)
	// Requests live in ctx, so that event streams end at once on shutdown.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	scheme, mode := "http", "read-only (no --admin-file)"
	if *cert != "" {
		scheme = "https"
	}
	if admins != nil {
		mode = "administrators can log in to release locks"
	}
	fmt.Fprintf(stdout, "sharelock ui: serving %s at %s://%s/ (%s)\n", dir, scheme, ln.Addr(), mode)
	errc := make(chan error, 1)
	go func() {
		if *cert != "" {
			errc <- hs.ServeTLS(ln, *cert, *key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "sharelock ui: %v\n", err)
		return exitError
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "sharelock ui: %v\n", err)
		return exitError
	}
	return 0
}

// cmdHashPassword reads a password (twice, without echo, on a terminal; one
// line otherwise) and prints an admin-file line "NAME:BCRYPT-HASH".
func cmdHashPassword(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ui hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", os.Getenv("USER"), "administrator name (recorded with every release)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 || *name == "" || strings.ContainsAny(*name, ": \t\r\n") {
		fmt.Fprintln(stderr, "sharelock ui hash-password: need --name NAME (no spaces or colons)")
		return exitUsage
	}
	var pw string
	if term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "sharelock ui hash-password: %v\n", err)
			return exitError
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil || string(a) != string(b) {
			fmt.Fprintln(stderr, "sharelock ui hash-password: the passwords differ")
			return exitError
		}
		pw = string(a)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintf(stderr, "sharelock ui hash-password: reading the password from stdin: %v\n", err)
			return exitError
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	h, err := dashboard.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "sharelock ui hash-password: %v\n", err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s:%s\n", *name, h)
	return 0
}
