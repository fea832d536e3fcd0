package istioimport

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Kind says what happened to a piece of Istio configuration.
type Kind string

// The kinds of report lines.
const (
	// Dropped: gitmesh cannot express it; the output lacks it.
	Dropped Kind = "dropped"
	// Approximated: the output expresses it differently; read the message
	// to see whether that matters for you.
	Approximated Kind = "approximated"
	// Skipped: a whole object (unknown kind, unreadable document) was not
	// converted.
	Skipped Kind = "skipped"
	// Note: how something was converted, for reviewers (defaults that
	// differ between Istio and gitmesh, what comes from discovery).
	Note Kind = "note"
	// NoTest: a route the generated traffic tests do not cover, and why.
	NoTest Kind = "no test"
)

// Finding is one line of the import report: what happened to the Istio
// field at Pos.
type Finding struct {
	// Pos is where the field is in the input YAML.
	Pos model.Pos `json:"pos"`
	// Object is "KIND NAMESPACE/NAME" of the Istio object.
	Object string `json:"object,omitempty"`
	// Field is the field path inside the object ("spec.http[0].mirror").
	Field string `json:"field,omitempty"`
	// Kind says what happened.
	Kind Kind `json:"kind"`
	// Message says why, and what the output has instead.
	Message string `json:"message"`
}

// String formats the finding as "file:line:col: OBJECT: FIELD: KIND: message".
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Pos.String())
	b.WriteString(": ")
	if f.Object != "" {
		b.WriteString(f.Object + ": ")
	}
	if f.Field != "" {
		b.WriteString(f.Field + ": ")
	}
	b.WriteString(string(f.Kind) + ": " + f.Message)
	return b.String()
}

// Report is every finding of an import, sorted by position.
type Report []Finding

// Count returns how many findings have kind k.
func (r Report) Count(k Kind) int {
	n := 0
	for _, f := range r {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// sort orders findings by file, line, column, then text, so the report is
// the same on every run.
func (r Report) sort() {
	slices.SortStableFunc(r, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col), cmp.Compare(a.String(), b.String()))
	})
}

// Text is the report as a file: a header, then one finding per line.
func (r Report) Text() []byte {
	var b strings.Builder
	b.WriteString("# gitmesh import istio: what was dropped or approximated, by source position\n")
	fmt.Fprintf(&b, "# %d dropped, %d approximated, %d skipped, %d notes, %d routes without a test\n",
		r.Count(Dropped), r.Count(Approximated), r.Count(Skipped), r.Count(Note), r.Count(NoTest))
	for _, f := range r {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// reporter collects findings for one object.
type reporter struct {
	out    *Report
	object string
}

func (r reporter) add(n node, k Kind, format string, a ...any) {
	*r.out = append(*r.out, Finding{Pos: n.pos(), Object: r.object, Field: n.path, Kind: k, Message: fmt.Sprintf(format, a...)})
}

// drop reports n as dropped and marks it read, so unread does not report
// it again.
func (r reporter) drop(n node, format string, a ...any) {
	n.markAll()
	r.add(n, Dropped, format, a...)
}

func (r reporter) approx(n node, format string, a ...any) {
	r.add(n, Approximated, format, a...)
}

func (r reporter) note(n node, format string, a ...any) {
	r.add(n, Note, format, a...)
}
