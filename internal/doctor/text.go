package doctor

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes r for people: a header, one ✔/·/⚠/✘ line per check
// (with its detail and, for ⚠ and ✘, its fix indented below) and a verdict.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sharelock doctor: %s\n", r.Dir)
	if r.Peer != "" {
		fmt.Fprintf(&b, "  peer (the same folder through another client): %s\n", r.Peer)
	}
	b.WriteString("\n")
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s %s\n", c.Status.Symbol(), c.Title)
		if c.Detail != "" {
			fmt.Fprintf(&b, "    %s\n", c.Detail)
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "    fix: %s\n", c.Fix)
		}
	}
	b.WriteString("\n")
	fails, warns := 0, 0
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	switch {
	case fails > 0:
		fmt.Fprintf(&b, "✘ This folder cannot hold a safe lock: %s above.\n", plural(fails, "problem"))
	case warns > 0:
		fmt.Fprintf(&b, "✔ This folder can hold a sharelock lock (%s above).\n", plural(warns, "warning"))
	default:
		b.WriteString("✔ This folder can hold a sharelock lock.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
