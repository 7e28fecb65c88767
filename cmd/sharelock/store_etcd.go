//go:build etcd

// The etcd build (sharelock-etcd): go build -tags etcd -o sharelock-etcd
// ./cmd/sharelock. It links the etcd client, which the default build leaves
// out for its start-up time, and opens etcd:// and etcds:// stores itself.

package main

import (
	"context"
	"io"
	"os"

	"sharelock"
	"sharelock/etcdstore"
)

func init() {
	// Set by the plain sharelock that handed over to us; the commands we
	// run must not inherit it.
	os.Unsetenv(reexecEnv)
	openStore = func(ctx context.Context, url string) (sharelock.Store, io.Closer, error) {
		if _, err := etcdstore.ParseURL(url); err != nil {
			return nil, nil, usageError{err}
		}
		s, err := etcdstore.Open(ctx, url)
		if err != nil {
			return nil, nil, err
		}
		return s, s, nil
	}
}
