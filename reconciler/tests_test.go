package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTestResults: the reconciler keeps the traffic test verdicts its
// pipeline computed, the live revision's and the failed attempt's, with
// each test's position, and drops the failed run once a revision is
// applied again.
func TestTestResults(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tests := `package mesh

tests: "canary": {
	from:    "sidecar/default/hello/v1"
	request: "GET http://hello:8080/"
	expect: to: {"hello/v1": 90, "hello/v2": 10}
}
`
	if err := os.WriteFile(filepath.Join(h.dir, "tests.cue"), []byte(tests), 0o644); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	first := h.rec.Status().Live.ID
	live, failed := h.rec.TestResults()
	if live == nil || failed != nil || live.Revision != first || live.Total != 1 || live.Passed != 1 || len(live.Tests) != 1 {
		t.Fatalf("after a good revision: live %+v, failed %+v", live, failed)
	}
	if r := live.Tests[0]; r.Name != "canary" || !r.Passed || r.Pos.File != "tests.cue" || r.Pos.Line != 3 ||
		!strings.HasPrefix(r.Outcome, "routed to hello/v1 90% hello/v2 10%") || len(r.Problems) != 0 {
		t.Errorf("passed test: %+v", r)
	}

	// 80/20 breaks the test: the revision fails and its run is kept.
	h.write(`{version: "v1", weight: 90}`, `{version: "v1", weight: 80}`)
	h.write(`{version: "v2", weight: 10}`, `{version: "v2", weight: 20}`)
	h.rec.ReconcileOnce(ctx)
	st := h.rec.Status()
	if st.Live.ID != first || st.LastAttempt == nil || st.LastAttempt.FailedStep != "render" {
		t.Fatalf("the failing test did not fail the revision at render: %+v", st.LastAttempt)
	}
	live, failed = h.rec.TestResults()
	if live == nil || live.Revision != first || live.Passed != 1 {
		t.Errorf("the live run changed: %+v", live)
	}
	if failed == nil || failed.Revision != st.LastAttempt.Revision.ID || failed.Failed != 1 || len(failed.Tests) != 1 {
		t.Fatalf("failed run %+v", failed)
	}
	if r := failed.Tests[0]; r.Passed || len(r.Problems) != 1 || r.Problems[0] != "expected hello/v1 90% hello/v2 10%, got hello/v1 80% hello/v2 20%" {
		t.Errorf("failed test: %+v", r)
	}

	// The test follows the canary: applied, and the failed run is gone.
	if err := os.WriteFile(filepath.Join(h.dir, "tests.cue"), []byte(strings.Replace(strings.Replace(tests, "90", "80", 1), "10}", "20}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	live, failed = h.rec.TestResults()
	if live == nil || live.Revision == first || live.Revision != h.rec.Status().Live.ID || live.Passed != 1 || failed != nil {
		t.Errorf("after the fix: live %+v, failed %+v", live, failed)
	}
}
