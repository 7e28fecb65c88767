//go:build !unix && !windows

package dialog

import "context"

// show: this OS has no dialog sharelock knows how to show.
func show(ctx context.Context, m Message) error { return ErrUnavailable }
