package check

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Compare judges head against base: it marks head's findings new,
// pre-existing or suppressed and computes the impact on every proxy. It
// does no I/O, so tests and the fuzz target can call it on in-memory sides.
func Compare(base, head *Side, failOn model.Severity) *Report {
	rep := &Report{SchemaVersion: SchemaVersion, Dir: ".", FailOn: failOn, Findings: []Finding{}}
	rep.Findings, rep.Counts = classify(base.Diags, head.Diags, head.Suppressions)
	if stepRank(head.FailedStep) < stepRank(base.FailedStep) {
		// Head stopped before a step base ran (a schema error stops
		// policies and render): base's findings from those steps are not
		// in head because nothing looked, not because they were fixed.
		rep.Counts.Fixed = 0
	}
	for _, f := range rep.Findings {
		if f.Blocking(failOn) {
			rep.Failed = true
			break
		}
	}
	rep.Impact = computeImpact(base, head)
	rep.Traffic = compareTraffic(base.Tests, head.Tests)
	return rep
}

// stepRank orders how far a side got through the pipeline: the rank of the
// step that stopped it, or past the last step when none did.
func stepRank(failed string) int {
	steps := []string{pipeline.StepLoad, pipeline.StepPolicies, pipeline.StepCredentials, pipeline.StepRender}
	for i, s := range steps {
		if s == failed {
			return i
		}
	}
	return len(steps)
}

// classify gives each head finding a status. A finding is pre-existing when
// base has one with the same code, path and message: lines are left out
// because unrelated edits above a finding move it. Matching is a multiset,
// so a second copy of a base finding is still new.
func classify(base, head model.Diagnostics, sups []Suppression) ([]Finding, Counts) {
	seen := map[string]int{}
	for _, d := range base {
		seen[findingKey(d)]++
	}
	used := make([]bool, len(sups))
	out := make([]Finding, 0, len(head))
	var c Counts
	for _, d := range head {
		f := Finding{Code: d.Code, Severity: d.Severity, File: d.Pos.File, Line: d.Pos.Line,
			Col: d.Pos.Col, Path: d.Path, Message: d.Message, Status: StatusNew}
		k := findingKey(d)
		switch {
		case seen[k] > 0:
			seen[k]--
			f.Status = StatusPreExisting
		case !strings.HasPrefix(d.Code, "GM09"):
			// Findings about suppressions cannot be suppressed themselves.
			for i, s := range sups {
				if s.Matches(d) {
					used[i] = true
					f.Status, f.Reason = StatusSuppressed, s.Reason
					break
				}
			}
		}
		// A suppression also covers a pre-existing finding; it is still
		// in use, so it is not stale.
		if f.Status == StatusPreExisting {
			for i, s := range sups {
				if s.Matches(d) {
					used[i] = true
				}
			}
		}
		out = append(out, f)
	}
	for i, s := range sups {
		if !used[i] && s.Reason != "" {
			out = append(out, Finding{Code: CodeSuppressionUnused, Severity: model.SeverityInfo,
				File: s.Pos.File, Line: s.Pos.Line, Col: s.Pos.Col, Status: StatusNew,
				Message: fmt.Sprintf("suppression of %s matches no finding; remove it", describeSuppression(s))})
		}
	}
	for _, f := range out {
		switch {
		case f.Status == StatusPreExisting:
			c.PreExisting++
		case f.Status == StatusSuppressed:
			c.Suppressed++
		case f.Severity == model.SeverityError:
			c.NewErrors++
		case f.Severity == model.SeverityWarning:
			c.NewWarnings++
		default:
			c.NewInfos++
		}
	}
	for _, n := range seen {
		c.Fixed += n
	}
	return out, c
}

func describeSuppression(s Suppression) string {
	d := s.Code
	if s.Path != "" {
		d += " at " + s.Path
	}
	if s.File != "" {
		d += " in " + s.File
	}
	return d
}

// positionInMessage finds file:line:col inside a message (some findings name
// the other place involved); those move like the finding's own line.
var positionInMessage = regexp.MustCompile(`(\.(?:cue|ya?ml|json)):\d+(?::\d+)?`)

func findingKey(d model.Diagnostic) string {
	msg := positionInMessage.ReplaceAllString(d.Message, "$1")
	return d.Code + "\x00" + d.Path + "\x00" + msg
}
