package check

import (
	"sort"
	"strings"

	"github.com/gitmesh/gitmesh/render/traffic"
)

// TrafficChange is a traffic test whose outcome or verdict differs
// between base and head: what a reviewer wants to know ("does jason still
// reach reviews v2?"). A test that passed at base and fails at head is
// also a new GM1104 finding, which is what fails the check.
type TrafficChange struct {
	// Name is the test's name (tests.NAME).
	Name string `json:"name"`
	// Base and Head are the outcomes in one line ("routed to reviews/v2
	// 100%, timeout 10s, …"); "" when the side has no such test or did
	// not render.
	Base string `json:"base,omitempty"`
	Head string `json:"head,omitempty"`
	// BasePassed and HeadPassed are the verdicts; a side without the
	// test counts as not passed.
	BasePassed bool `json:"basePassed"`
	HeadPassed bool `json:"headPassed"`
	// Problem says why head fails ("expected reviews/v2 100%, got …").
	Problem string `json:"problem,omitempty"`
}

// compareTraffic lists the tests that change outcome or verdict, by name.
func compareTraffic(base, head []traffic.Result) []TrafficChange {
	type pair struct{ b, h *traffic.Result }
	by := map[string]*pair{}
	for i := range base {
		by[base[i].Name] = &pair{b: &base[i]}
	}
	for i := range head {
		p := by[head[i].Name]
		if p == nil {
			p = &pair{}
			by[head[i].Name] = p
		}
		p.h = &head[i]
	}
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []TrafficChange
	for _, n := range names {
		p := by[n]
		c := TrafficChange{Name: n}
		if p.b != nil {
			c.Base, c.BasePassed = outcomeLine(*p.b), p.b.Passed()
		}
		if p.h != nil {
			c.Head, c.HeadPassed = outcomeLine(*p.h), p.h.Passed()
			if !c.HeadPassed {
				c.Problem = p.h.Message()
			}
		}
		if c.Base != c.Head || c.BasePassed != c.HeadPassed {
			out = append(out, c)
		}
	}
	return out
}

func outcomeLine(r traffic.Result) string {
	if r.Outcome == nil {
		return "not evaluated: " + r.Message()
	}
	return traffic.Summary(r.Outcome)
}

// verdictWord is a test's verdict for the report.
func verdictWord(present, passed bool) string {
	switch {
	case !present:
		return "absent"
	case passed:
		return "passes"
	}
	return "FAILS"
}

// trafficLines are the text and markdown bodies of one change.
func (c TrafficChange) lines() []string {
	out := []string{c.Name + ": " + verdictWord(c.Base != "", c.BasePassed) + " → " + verdictWord(c.Head != "", c.HeadPassed)}
	if c.Base != "" {
		out = append(out, "base: "+c.Base)
	}
	if c.Head != "" {
		out = append(out, "head: "+c.Head)
	}
	if c.Problem != "" {
		out = append(out, "head fails: "+strings.TrimSpace(c.Problem))
	}
	return out
}
