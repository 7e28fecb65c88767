//go:build !linux

package folder

// Without inotify there are no wake-ups: waiters only poll (wake_linux.go
// describes what a waker does where it exists). newWaker returns nil, and a
// nil waker never fires.

const (
	wakeGen   = 1 << iota // the head generation changed: look again
	wakeHead              // a newer generation appeared: follow the head
	wakeQueue             // a ticket ahead of ours left: re-check our place
)

type waker struct{}

func newWaker(dir string) *waker { return nil }

func (w *waker) C() <-chan struct{}                                    { return nil }
func (w *waker) take() uint32                                          { return 0 }
func (w *waker) healthy() bool                                         { return false }
func (w *waker) needs(head uint64, watchGen bool, ticket uint64) bool  { return false }
func (w *waker) follow(head uint64, watchGen bool, ticket uint64) bool { return false }
func (w *waker) Close()                                                {}
