package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Formats lists the output formats Write accepts.
var Formats = []string{"text", "json", "markdown", "sarif", "github"}

// WriteOptions tune output that depends on where it goes.
type WriteOptions struct {
	// Color adds ANSI colours to text output; the CLI sets it only when
	// stdout is a terminal.
	Color bool
}

// Write prints rep in one of Formats. Every format is written from the
// same Report, so they agree with each other and with the exit code.
func Write(w io.Writer, rep *Report, format string, opts WriteOptions) error {
	switch format {
	case "text":
		return writeText(w, rep, opts.Color)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	case "markdown":
		return writeMarkdown(w, rep)
	case "sarif":
		return writeSARIF(w, rep)
	case "github":
		return writeGitHub(w, rep)
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

// palette holds the ANSI sequences of text output; all empty without colour.
type palette struct{ bold, red, yellow, green, dim, reset string }

func newPalette(on bool) palette {
	if !on {
		return palette{}
	}
	return palette{bold: "\x1b[1m", red: "\x1b[31m", yellow: "\x1b[33m", green: "\x1b[32m", dim: "\x1b[2m", reset: "\x1b[0m"}
}

func writeText(w io.Writer, rep *Report, color bool) error {
	p := newPalette(color)
	ew := &errWriter{w: w}
	ew.printf("%sgitmesh check%s %s: base %s → head %s\n", p.bold, p.reset, rep.Dir, revString(rep.Base), revString(rep.Head))
	if len(rep.Findings) > 0 {
		ew.printf("\n%sfindings%s\n", p.bold, p.reset)
	}
	for _, f := range rep.Findings {
		sev, pre, post := f.Severity.String(), "", ""
		switch {
		case f.Status != StatusNew:
			pre, post = p.dim, p.reset
		case f.Severity == model.SeverityError:
			sev = p.red + sev + p.reset
		case f.Severity == model.SeverityWarning:
			sev = p.yellow + sev + p.reset
		}
		ew.printf("  %s%s: %s %s: %s%s%s%s\n", pre, f.Location(), sev, f.Code, pathPrefix(f.Path), oneLine(f.Message), oneLine(statusSuffix(f)), post)
	}
	ew.printf("\n%simpact%s: %s\n", p.bold, p.reset, impactSummary(rep.Impact))
	for _, g := range rep.Impact.Groups {
		ew.printf("  %s%s%s\n", p.bold, classList(g.Classes, 6), p.reset)
		for _, l := range groupLines(g) {
			c := ""
			switch l.op {
			case '+':
				c = p.green
			case '-':
				c = p.red
			}
			ew.printf("    %s%s%s\n", c, l.text, resetIf(c, p))
		}
	}
	if len(rep.Traffic) > 0 {
		ew.printf("\n%straffic tests that change outcome%s\n", p.bold, p.reset)
		for _, c := range rep.Traffic {
			for i, l := range c.lines() {
				col := ""
				if i == 0 && !c.HeadPassed && c.Head != "" {
					col = p.red
				}
				ew.printf("  %s%s%s%s\n", strings.Repeat("  ", min(i, 1)), col, l, resetIf(col, p))
			}
		}
	}
	ew.printf("\n%s\n", verdict(rep))
	return ew.err
}

// errWriter keeps the first write error so the writers read straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

func resetIf(c string, p palette) string {
	if c == "" {
		return ""
	}
	return p.reset
}

func revString(r Revision) string {
	if r.Commit == "" {
		return r.Name
	}
	return fmt.Sprintf("%s (%s)", r.Name, short(r.Commit))
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func pathPrefix(p string) string {
	if p == "" {
		return ""
	}
	return p + ": "
}

func statusSuffix(f Finding) string {
	switch f.Status {
	case StatusPreExisting:
		return " (pre-existing)"
	case StatusSuppressed:
		return " (suppressed: " + f.Reason + ")"
	}
	return ""
}

// impactSummary is the one-line summary every format shows.
func impactSummary(imp Impact) string {
	if !imp.Available {
		return "not computed: " + imp.Note
	}
	if imp.Proxies == 0 {
		return "no proxy changes"
	}
	return fmt.Sprintf("%s affected, resources %d added / %d changed / %d removed",
		countWord(imp.Proxies, "proxy", "proxies"), imp.Added, imp.Changed, imp.Removed)
}

// verdict is the last line: what the exit code will be and why.
func verdict(rep *Report) string {
	c := rep.Counts
	s := fmt.Sprintf("%s, %s, %s, %d pre-existing, %d suppressed, %d fixed",
		countWord(c.NewErrors, "new error", "new errors"), countWord(c.NewWarnings, "new warning", "new warnings"),
		countWord(c.NewInfos, "new info", "new infos"), c.PreExisting, c.Suppressed, c.Fixed)
	if rep.Failed {
		return "FAIL: " + s
	}
	return "ok: " + s
}

func countWord(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// classList names the classes of a group, bounded so a change seen by a
// thousand sidecars stays one line.
func classList(classes []string, max int) string {
	if len(classes) <= max {
		return strings.Join(classes, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(classes[:max-1], ", "), len(classes)-max+1)
}

// diffLine is one line of a group's change with its kind: '+' added, '-'
// removed, '~' changed.
type diffLine struct {
	op   byte
	text string
}

// maxNames bounds the resource names listed for a new or removed class.
const maxNames = 10

// groupLines renders a group's change as lines shared by text, markdown
// and github output, e.g. `route "9080": vhost "…" route "canary": weights
// v1 50→80` and `cluster added: outbound|9080|v4|reviews…`.
func groupLines(g Group) []diffLine {
	var out []diffLine
	switch g.Change {
	case "added", "removed":
		op := byte('+')
		if g.Change == "removed" {
			op = '-'
		}
		out = append(out, diffLine{op, "proxy class " + g.Change})
		for _, t := range g.Types {
			names := append(t.Added, t.Removed...)
			shown := names
			if len(shown) > maxNames {
				shown = shown[:maxNames]
			}
			for _, n := range shown {
				out = append(out, diffLine{op, t.Type + " " + g.Change + ": " + n})
			}
			if len(names) > len(shown) {
				out = append(out, diffLine{op, fmt.Sprintf("… and %d more %s resources", len(names)-len(shown), t.Type)})
			}
		}
		return out
	}
	for _, t := range g.Types {
		for _, n := range t.Added {
			out = append(out, diffLine{'+', t.Type + " added: " + n})
		}
		for _, n := range t.Removed {
			out = append(out, diffLine{'-', t.Type + " removed: " + n})
		}
		for _, c := range t.Changed {
			for _, l := range c.Lines {
				out = append(out, diffLine{'~', fmt.Sprintf("%s %q: %s", t.Type, c.Name, l)})
			}
		}
	}
	return out
}

// oneLine keeps untrusted text from starting lines of its own (a message
// with "\n::error" would otherwise forge an annotation in a CI log).
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
