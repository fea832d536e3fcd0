package check

import (
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestBrokenHeadFixesNothing: a head that does not load (a schema error)
// reports its findings and no impact, and does not count base's policy
// findings as fixed: the policies never ran on it, so nothing is known to
// be fixed (bookinfo's base has a GM0601 warning from the policies step).
func TestBrokenHeadFixesNothing(t *testing.T) {
	r := newTestRepo(t, bookinfo())
	r.edit(t, "services/reviews.cue", `timeout: "10s"`, `timeout: 10`)
	rep, out := runCheck(t, r, "main", "")
	if !rep.Failed || rep.Counts.NewErrors == 0 {
		t.Fatalf("broken head: failed %v, %d new errors\n%s", rep.Failed, rep.Counts.NewErrors, out)
	}
	for _, f := range rep.Findings {
		if f.Severity == model.SeverityError && f.Status != StatusNew {
			t.Errorf("head error %s %s is %s, want new", f.Code, f.Message, f.Status)
		}
	}
	if rep.Impact.Available || len(rep.Impact.Groups) != 0 || !strings.Contains(rep.Impact.Note, "head: the mesh") {
		t.Errorf("broken head has an impact: %+v", rep.Impact)
	}
	if rep.Counts.Fixed != 0 || !strings.Contains(out, "0 fixed") {
		t.Errorf("broken head counts %d base findings as fixed\n%s", rep.Counts.Fixed, out)
	}
}
