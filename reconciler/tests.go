package reconciler

import (
	"sort"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/render/traffic"
	"github.com/gitmesh/gitmesh/schema/model"
)

// testRun describes the traffic tests a pipeline run evaluated for the
// tests API: the pipeline's own verdicts, kept as they were computed, so
// the console shows exactly what decided the revision. It returns nil
// when the run did not get as far as the tests (load, policies or render
// failed); a run of a repository without tests is an empty TestRun.
func testRun(revision string, res *pipeline.Result) *apiv1.TestRun {
	if res == nil || res.Bundle == nil {
		return nil
	}
	run := &apiv1.TestRun{Revision: revision, Tests: make([]apiv1.TestResult, 0, min(len(res.Tests), apiv1.MaxTests)), Total: len(res.Tests)}
	all := make([]apiv1.TestResult, 0, len(res.Tests))
	for _, t := range res.Tests {
		all = append(all, testResult(res.Mesh, t))
		if t.Passed() {
			run.Passed++
		} else {
			run.Failed++
		}
	}
	if len(all) > apiv1.MaxTests {
		// Failed first, each part still in name order.
		sort.SliceStable(all, func(i, j int) bool { return !all[i].Passed && all[j].Passed })
	}
	run.Tests = append(run.Tests, all[:min(len(all), apiv1.MaxTests)]...)
	return run
}

func testResult(m *model.Mesh, t traffic.Result) apiv1.TestResult {
	r := apiv1.TestResult{Name: t.Name, Pos: m.Sources.Lookup(model.Path("tests", t.Name)), Passed: t.Passed()}
	if t.Outcome != nil {
		r.Outcome = traffic.Summary(t.Outcome)
	}
	switch {
	case t.Err != nil:
		r.Problems = []string{t.Message()}
	case len(t.Problems) > 0:
		r.Problems = append([]string{}, t.Problems...)
	}
	return r
}

// TestResults returns the traffic test verdicts of the live revision (nil
// after a restore from disk, until a revision is evaluated again) and of
// the newest failed attempt that ran its tests (nil when the newest
// attempt did not fail that way). Callers must not modify them. Safe for
// concurrent use.
func (r *Reconciler) TestResults() (live, failed *apiv1.TestRun) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.hist.liveTests, r.hist.failedTests
}
