package drift

import (
	"strings"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/golden"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

func nackInput(now time.Time) Input {
	return Input{Now: now, Mesh: testMesh(), Revision: Revision{Served: "1a2b3c4d5e6f7a8b9c0d"},
		Proxies: []apiv1.Proxy{{NodeID: "sidecar/default/reviews/v3/pod-1", Types: []apiv1.TypeStatus{
			{TypeURL: ldsType, Status: apiv1.Nacked, LastNack: &apiv1.Nack{Revision: "1a2b3c4d5e6f7a8b9c0d", Error: "listener: invalid port"}},
		}}}}
}

// report builds a stamped report the way the Runner does.
func report(tr *Tracker, in Input) *Report {
	fs := Build(in)
	tr.Stamp(in.Now, fs)
	return NewReport("prod", in.Mesh.Mesh.Name, in.Now, in.Revision, fs)
}

func TestReportYAML(t *testing.T) {
	rep := report(NewTracker(), nackInput(t0))
	b, err := rep.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/report.golden.yaml", b)
	back, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !Same(rep, back) {
		t.Errorf("a report does not survive YAML: %+v", back)
	}
}

func TestSameIgnoresTimestampsOnly(t *testing.T) {
	tr := NewTracker()
	a := report(tr, nackInput(t0))
	b := report(tr, nackInput(t0.Add(time.Hour)))
	if !Same(a, b) {
		t.Fatal("an unchanged situation an hour later is not the same report")
	}
	ab, _ := a.YAML()
	bb, _ := b.YAML()
	if string(ab) == string(bb) {
		t.Fatal("generatedAt should differ in the bytes")
	}
	in := nackInput(t0.Add(2 * time.Hour))
	in.Proxies[0].Types[0].LastNack.Error = "listener: another error"
	c := report(tr, in)
	if Same(b, c) {
		t.Fatal("a new NACK error is a change")
	}
	if c.Findings[0].FirstSeen != t0 {
		t.Errorf("first seen moved to %v; the same finding keeps its first-seen time", c.Findings[0].FirstSeen)
	}
}

func TestTrackerForgetsAndSeeds(t *testing.T) {
	tr := NewTracker()
	first := report(tr, nackInput(t0))
	report(tr, Input{Now: t0.Add(time.Minute), Mesh: testMesh()}) // resolved
	again := report(tr, nackInput(t0.Add(2*time.Minute)))
	if got := again.Findings[0].FirstSeen; !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("a finding that came back has first seen %v, want %v", got, t0.Add(2*time.Minute))
	}
	// After a restart, the committed report's first-seen times carry over.
	fresh := NewTracker()
	fresh.Seed(first)
	if got := report(fresh, nackInput(t0.Add(time.Hour))).Findings[0].FirstSeen; !got.Equal(t0) {
		t.Errorf("seeded first seen = %v, want %v", got, t0)
	}
}

func TestMessage(t *testing.T) {
	tr := NewTracker()
	clean := report(tr, Input{Now: t0, Mesh: testMesh(), Endpoints: nil})
	nack := report(tr, nackInput(t0))
	msg := Message(clean, nack)
	subject, body, _ := strings.Cut(msg, "\n\n")
	if want := "drift: sidecar/default/reviews/v3/pod-1 NACKed listeners of revision 1a2b3c4d5e6f: listener: invali…"; subject != want {
		t.Errorf("subject:\n got %q\nwant %q", subject, want)
	}
	for _, want := range []string{
		"cluster prod: 2 errors, 0 warnings, 0 info; serving 1a2b3c4d5e6f",
		"+ GM2001 error proxy/sidecar/default/reviews/v3/pod-1 type/listeners: sidecar/default/reviews/v3/pod-1 NACKed",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	resolved := report(tr, Input{Now: t0, Mesh: testMesh(), Revision: nack.Revision})
	if got, _, _ := strings.Cut(Message(nack, resolved), "\n"); !strings.HasPrefix(got, "drift resolved: sidecar/default/reviews/v3/pod-1 NACKed") {
		t.Errorf("resolved subject = %q", got)
	}
	if got, _, _ := strings.Cut(Message(nil, nack), "\n"); !strings.HasPrefix(got, "drift: 2 new; ") {
		t.Errorf("first report subject = %q", got)
	}
}
