package drift

import (
	"fmt"
	"strings"

	"github.com/gitmesh/gitmesh/reconciler/source"
)

// maxSubject keeps the commit subject readable in `git log --oneline`.
const maxSubject = 100

// Change is what differs between two reports, for the commit message.
type Change struct {
	Added, Resolved, Changed []Finding
	Revision                 bool
}

// Empty reports whether nothing meaningful changed.
func (c Change) Empty() bool {
	return len(c.Added) == 0 && len(c.Resolved) == 0 && len(c.Changed) == 0 && !c.Revision
}

// Compare lists what next adds, resolves and changes relative to prev
// (nil prev: everything is added).
func Compare(prev, next *Report) Change {
	var c Change
	old := map[string]Finding{}
	if prev != nil {
		for _, f := range prev.Findings {
			old[f.key()] = f
		}
		c.Revision = prev.Revision != next.Revision
	} else {
		c.Revision = next.Revision != Revision{}
	}
	for _, f := range next.Findings {
		o, ok := old[f.key()]
		switch {
		case !ok:
			c.Added = append(c.Added, f)
		case o.Message != f.Message || o.Severity != f.Severity:
			c.Changed = append(c.Changed, f)
		}
		delete(old, f.key())
	}
	if prev != nil {
		for _, f := range prev.Findings {
			if _, gone := old[f.key()]; gone {
				c.Resolved = append(c.Resolved, f)
			}
		}
	}
	return c
}

// Message is the commit message for going from prev to next: a subject a
// reader of `git log --oneline` understands ("drift: reviews-v3 NACKed …"),
// then one line per added (+), changed (~) and resolved (-) finding.
func Message(prev, next *Report) string {
	c := Compare(prev, next)
	var subject string
	switch {
	case len(c.Added) == 1 && len(c.Resolved) == 0 && len(c.Changed) == 0:
		subject = "drift: " + c.Added[0].Message
	case len(c.Added) == 0 && len(c.Resolved) == 1 && len(c.Changed) == 0:
		subject = "drift resolved: " + c.Resolved[0].Message
	case len(c.Added) == 0 && len(c.Resolved) == 0 && len(c.Changed) == 1:
		subject = "drift: " + c.Changed[0].Message
	case c.Empty() || (len(c.Added)+len(c.Resolved)+len(c.Changed) == 0):
		subject = fmt.Sprintf("drift: serving %s", orNone(source.ShortID(next.Revision.Served)))
		if next.Revision.Newest != "" {
			subject += fmt.Sprintf(", newest %s %s", source.ShortID(next.Revision.Newest), next.Revision.NewestStatus)
		}
	default:
		var parts []string
		if n := len(c.Added); n > 0 {
			parts = append(parts, fmt.Sprintf("%d new", n))
		}
		if n := len(c.Changed); n > 0 {
			parts = append(parts, fmt.Sprintf("%d changed", n))
		}
		if n := len(c.Resolved); n > 0 {
			parts = append(parts, fmt.Sprintf("%d resolved", n))
		}
		subject = "drift: " + strings.Join(parts, ", ")
		if len(c.Added) > 0 {
			subject += "; " + c.Added[0].Message
		}
	}
	var b strings.Builder
	b.WriteString(oneLine(subject, maxSubject))
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "cluster %s: %d errors, %d warnings, %d info; serving %s\n",
		next.Cluster, next.Summary.Errors, next.Summary.Warnings, next.Summary.Infos, orNone(source.ShortID(next.Revision.Served)))
	if len(c.Added)+len(c.Changed)+len(c.Resolved) > 0 {
		b.WriteString("\n")
	}
	for _, l := range []struct {
		mark string
		fs   []Finding
	}{{"+", c.Added}, {"~", c.Changed}, {"-", c.Resolved}} {
		for _, f := range l.fs {
			fmt.Fprintf(&b, "%s %s %s %s: %s\n", l.mark, f.Code, f.Severity, strings.Join(f.Objects, " "), oneLine(f.Message, 300))
		}
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// oneLine keeps the first line of s, cut to n runes with an ellipsis.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 4*n+4 {
		// A rune is at most 4 bytes, so this keeps more than n of them
		// (the ellipsis below cuts the rest) without converting a huge string.
		s = s[:4*n+4]
	}
	r := []rune(s)
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
