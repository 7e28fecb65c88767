// Package etcdstore keeps sharelock's locks in an etcd cluster instead of a
// shared folder: the same API, the same holder records, fencing tokens,
// wait line, release requests, history and breaks, for machines that share
// an etcd cluster rather than a folder.
//
//	store, err := etcdstore.Open(ctx, "etcd://10.0.0.5:2379,10.0.0.6:2379,10.0.0.7:2379/office")
//	if err != nil {
//		return err // names the URL and the fix
//	}
//	defer store.Close() // revokes the lease: locks still held are free at once
//	lock, err := sharelock.Acquire(ctx, "payroll/wems.db", sharelock.WithStore(store), sharelock.WithApp("wems"))
//
// # URLs
//
//	etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX][?OPTIONS]     plain gRPC
//	etcds://HOST[:PORT][,HOST[:PORT]...][/PREFIX][?OPTIONS]    TLS
//
// List every member of the cluster, comma-separated; the port defaults to
// 2379 and the key prefix to /sharelock (every lock lives under PREFIX/l/;
// stores with different prefixes never see each other's locks). Options:
//
//	ca=FILE             CA certificates to verify the servers (etcds://; default: the system's roots)
//	cert=FILE&key=FILE  client certificate and key (etcds://; both or neither)
//	user=NAME           etcd user (etcd's own authentication)
//	password-file=FILE  the user's password: the first line of FILE
//
// A password never goes in the URL; WithTLS and WithAuth set the same from
// code (and take precedence over the URL's).
//
// # Lock names are logical
//
// A lock is named by the path passed to sharelock.Acquire, exactly as
// given: nothing is resolved against the current directory or the file
// system, and the file need not exist. "data/wems.db", "./data/wems.db" and
// "/srv/data/wems.db" are three different locks. Every machine must spell
// the name the same way; a name like "payroll/wems.db" that is not a path
// on any of them works best.
//
// # Differences from the shared folder
//
// A lock is held while its holder's etcd lease is kept alive (the default
// lease is DefaultLease, 10 s; WithLease sets it, rounded up to whole
// seconds, at least 2 s; keep it at 10 s or more, so that a leader election
// in the cluster does not cost a holder its lock). A crashed holder's lock
// is free once its lease expires. There is no stale state: Inspect reports
// Free or Held, and Break without force refuses any holder (ErrLive).
// History keeps the newest 256 events of each lock. Close the store when
// done: it revokes its leases, so locks still held through it are free for
// the others at once.
package etcdstore

import (
	"context"
	"time"

	"sharelock/internal/etcd"
)

// Store is an etcd store; pass it to sharelock.WithStore. It is safe for
// concurrent use. Close it when done: Close revokes its leases, which
// releases every lock still held through it.
type Store = etcd.Store

// Option configures Open.
type Option = etcd.Option

// Config is what ParseURL finds in a store URL.
type Config = etcd.Config

// Defaults.
const (
	// DefaultLease is the lease when the caller sets none (sharelock.WithLease).
	DefaultLease = etcd.DefaultLease
	// DefaultPort is the port of an endpoint given without one.
	DefaultPort = etcd.DefaultPort
	// DefaultPrefix is the key prefix of a URL without a path.
	DefaultPrefix = etcd.DefaultPrefix
)

// Open connects to the etcd cluster named by url (see the package doc for
// its forms) and checks that it answers, bounded by ctx and the dial
// timeout (WithDialTimeout, default 5 s). Errors name the URL and the fix.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	return etcd.Open(ctx, url, opts...)
}

// ParseURL checks a store URL without connecting, and returns what it
// names. Its errors name the URL and the fix.
func ParseURL(url string) (Config, error) { return etcd.ParseURL(url) }

// WithTLS sets the files for a TLS connection (etcds:// only): caFile
// verifies the servers (empty: the system's roots); certFile and keyFile,
// if given, authenticate this client. They replace the URL's ca=, cert= and
// key=.
func WithTLS(caFile, certFile, keyFile string) Option { return etcd.WithTLS(caFile, certFile, keyFile) }

// WithAuth sets the etcd user name and password (etcd's own
// authentication). It replaces the URL's user= and password-file=.
func WithAuth(user, password string) Option { return etcd.WithAuth(user, password) }

// WithDialTimeout bounds connecting to the cluster in Open (default 5 s).
func WithDialTimeout(d time.Duration) Option { return etcd.WithDialTimeout(d) }

// WithRequestWait sets how long sharelock.RequestRelease waits for the
// holder's answer (default 5 s; its ctx bounds it too).
func WithRequestWait(d time.Duration) Option { return etcd.WithRequestWait(d) }
