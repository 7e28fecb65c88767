//go:build !linux

package sharetest

import "time"

// Missing reports what is missing to start shares of kind here: on this OS,
// everything (the rigs need Linux). The error wraps errors.ErrUnsupported.
func Missing(kind string) error { return errNotLinux }

// Launch is unsupported on this OS.
func Launch(kind, dir string) (*Share, error) { return nil, errNotLinux }

func stillMounted(dir string) bool { return false }

// LaunchN is unsupported on this OS.
func LaunchN(kind, dir string, n int) (*Share, error) { return nil, errNotLinux }

// Wedged reports whether a client mount was found wedged: never here.
func (s *Share) Wedged() bool { return false }

// Answering reports whether the share's mounts answer: always, here.
func (s *Share) Answering(d time.Duration) bool { return true }
