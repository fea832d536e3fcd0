package check

import (
	"maps"
	"slices"
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
	bs, hs := testsByName(base), testsByName(head)
	var out []TrafficChange
	for _, n := range unionSorted(slices.Collect(maps.Keys(bs)), slices.Collect(maps.Keys(hs))) {
		c := TrafficChange{Name: n}
		if b := bs[n]; b != nil {
			c.Base, c.BasePassed = outcomeLine(*b), b.Passed()
		}
		if h := hs[n]; h != nil {
			c.Head, c.HeadPassed = outcomeLine(*h), h.Passed()
			if !c.HeadPassed {
				c.Problem = h.Message()
			}
		}
		if c.Base != c.Head || c.BasePassed != c.HeadPassed {
			out = append(out, c)
		}
	}
	return out
}

// testsByName indexes one side's test results by name.
func testsByName(rs []traffic.Result) map[string]*traffic.Result {
	m := make(map[string]*traffic.Result, len(rs))
	for i := range rs {
		m[rs[i].Name] = &rs[i]
	}
	return m
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
