package folder

import (
	"path/filepath"
	"sync"
	"testing"

	"sharelock/internal/core"
	"sharelock/internal/storetest"
	"sharelock/internal/testdir"
)

// TestConformance runs the store conformance suite (internal/storetest)
// against the folder store on local disk: each named store acts as its own
// machine (distinct user, host, machine ID and PID), all on one directory.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Env {
		dir := testdir.New(t)
		var mu sync.Mutex
		stores := map[string]*Store{}
		return storetest.Env{
			Path: filepath.Join(dir, "wems.db"),
			Store: func(name string) core.Store {
				mu.Lock()
				defer mu.Unlock()
				if s, ok := stores[name]; ok {
					return s
				}
				s := newStore(t, Options{Self: machine(name, 1000+len(stores))})
				stores[name] = s
				return s
			},
		}
	})
}
