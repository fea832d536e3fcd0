package traffic

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Check compares an outcome with what a test expects and returns what
// differs, one sentence each; none means the test passes. Rules:
//   - to: each key's share (a SERVICE key sums its versions) must be
//     within tolerance, and no destination outside the keys may take more
//     than tolerance;
//   - status: that status must take statusPercent (default 100) of the
//     requests; without status, no request may be refused outright (403,
//     404, 503, no route for every request), but a partial fault passes;
//   - noRoute: true means every request is unrouted, false or unset none;
//   - timeout and retries: those of the caller's route.
func Check(x model.TrafficExpect, o *Outcome) []string {
	var out []string
	tol := x.Tolerance + 1e-6
	if len(x.To) > 0 {
		keys := sortedKeys(x.To)
		bad := false
		for _, k := range keys {
			if got := share(o.To, k); abs(got-x.To[k]) > tol {
				bad = true
			}
		}
		for d, v := range o.To {
			if !covered(d, keys) && v > tol {
				bad = true
			}
		}
		if bad {
			want := make([]string, len(keys))
			for i, k := range keys {
				want[i] = k + " " + pct(x.To[k])
			}
			out = append(out, fmt.Sprintf("expected %s, got %s", strings.Join(want, " "), Shares(o.To)))
		}
	}
	if x.Status != 0 {
		want := x.StatusPercent
		if want == 0 {
			want = 100
		}
		if got := o.Status[x.Status]; abs(got-want) > tol {
			out = append(out, fmt.Sprintf("expected status %d for %s of requests, got %s", x.Status, pct(want), statuses(o)))
		}
	} else if refused(o) >= 100-tol && !x.NoRoute {
		out = append(out, "expected the request to go through, got "+statuses(o))
	}
	if x.NoRoute && o.NoRoute < 100-tol {
		out = append(out, "expected no route, got "+pct(o.NoRoute)+" unrouted")
	}
	if x.Timeout != nil {
		if o.Timeout == nil {
			out = append(out, fmt.Sprintf("expected timeout %s, got no route taken", dur(*x.Timeout)))
		} else if *o.Timeout != *x.Timeout {
			out = append(out, fmt.Sprintf("expected timeout %s, got %s", dur(*x.Timeout), dur(*o.Timeout)))
		}
	}
	if x.Retries != nil {
		switch g := o.Retries; {
		case g == nil:
			out = append(out, fmt.Sprintf("expected %d retries, got no route taken", x.Retries.Attempts))
		case g.Attempts != x.Retries.Attempts:
			out = append(out, fmt.Sprintf("expected %d retries, got %d", x.Retries.Attempts, g.Attempts))
		case x.Retries.PerTryTimeout != nil && (g.PerTryTimeout == nil || *g.PerTryTimeout != *x.Retries.PerTryTimeout):
			got := "none"
			if g.PerTryTimeout != nil {
				got = dur(*g.PerTryTimeout)
			}
			out = append(out, fmt.Sprintf("expected per-try timeout %s, got %s", dur(*x.Retries.PerTryTimeout), got))
		}
	}
	return out
}

// refused is the share of requests that never reach a workload.
func refused(o *Outcome) float64 {
	r := o.NoRoute
	for code, v := range o.Status {
		if code == 404 {
			continue // counted in NoRoute already
		}
		r += v
	}
	return r
}

func statuses(o *Outcome) string {
	codes := make([]int, 0, len(o.Status))
	for c, v := range o.Status {
		if v > 0 {
			codes = append(codes, c)
		}
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, "status "+strconv.Itoa(c)+" "+pct(o.Status[c]))
	}
	if o.NoRoute > 0 {
		parts = append(parts, "no route "+pct(o.NoRoute))
	}
	if len(o.To) > 0 {
		parts = append(parts, "routed to "+Shares(o.To))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// share sums the destinations a key names: "reviews" covers
// "reviews/v1" and "reviews/v2".
func share(m map[string]float64, key string) float64 {
	s := 0.0
	for d, v := range m {
		if d == key || strings.HasPrefix(d, key+"/") {
			s += v
		}
	}
	return s
}

func covered(d string, keys []string) bool {
	for _, k := range keys {
		if d == k || strings.HasPrefix(d, k+"/") {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// dur prints a model duration as Go does ("10s", "1.5s"), without time.
func dur(d model.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d%model.Second == 0 {
		return strconv.FormatInt(int64(d/model.Second), 10) + "s"
	}
	if d%model.Millisecond == 0 {
		return strconv.FormatInt(int64(d/model.Millisecond), 10) + "ms"
	}
	return strconv.FormatFloat(float64(d)/float64(model.Second), 'f', -1, 64) + "s"
}

// Result is one traffic test's verdict.
type Result struct {
	// Name is the test's name.
	Name string
	// Outcome is what happened; nil when the test could not run.
	Outcome *Outcome
	// Problems say how the outcome differs from the expectation; empty
	// means the test passed.
	Problems []string
	// Err says why the test could not be evaluated.
	Err error
}

// Passed reports whether the test passed.
func (r Result) Passed() bool { return r.Err == nil && len(r.Problems) == 0 }

// Message is the one-line verdict of a failed test.
func (r Result) Message() string {
	if r.Err != nil {
		return "cannot evaluate: " + r.Err.Error()
	}
	return strings.Join(r.Problems, "; ")
}

// RunTests evaluates every traffic test of the mesh on the bundle, in
// name order. Tests whose request does not parse are skipped: the
// policies already reported them (GM1101).
func RunTests(m *model.Mesh, b *render.Bundle, in render.Input) []Result {
	if len(m.Tests) == 0 || b == nil {
		return nil
	}
	w := NewWorld(m, in.Addresses, in.Endpoints)
	cfgs := BundleConfigs(b)
	var out []Result
	for _, name := range m.TestNames() {
		t := m.Tests[name]
		req, err := model.ParseRequest(t.Request)
		if err != nil {
			continue
		}
		o, err := Evaluate(cfgs, w, t.From, Request{Request: req, Headers: t.Headers, Principal: t.Principal})
		r := Result{Name: name, Outcome: o, Err: err}
		if err == nil {
			r.Problems = Check(t.Expect, o)
		}
		out = append(out, r)
	}
	return out
}
