package reconciler

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/testing/protocmp"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// harness is a reconciler over a real directory source, a real xDS server
// (not serving a port: Apply is what the loop talks to) and a real state dir.
type harness struct {
	t        *testing.T
	dir      string
	stateDir string
	srv      *xds.Server
	rec      *Reconciler
	reg      *prometheus.Registry
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: filepath.Join(t.TempDir(), "mesh"), stateDir: t.TempDir(), reg: prometheus.NewRegistry()}
	copyDir(t, filepath.Join("..", "examples", "minimal"), h.dir)
	src, err := source.NewDir(source.DirOptions{Dir: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	h.srv, err = xds.New(xds.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h.rec, err = New(Options{Source: src, Server: h.srv, StateDir: h.stateDir, Logger: quiet, Registerer: h.reg, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// copyDir copies an example into a test's own directory.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) write(old, new string) {
	h.t.Helper()
	path := filepath.Join(h.dir, "mesh.cue")
	b, err := os.ReadFile(path)
	if err != nil {
		h.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		h.t.Fatalf("mesh.cue has no %q", old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// writeOther adds a service that calls nothing: no change elsewhere is
// visible to its sidecar.
func writeOther(t *testing.T, dir string) {
	t.Helper()
	err := os.WriteFile(filepath.Join(dir, "other.cue"), []byte(`package mesh

services: other: {
	ports: [{name: "http", number: 9090}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: []
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
}

func condition(st apiv1.Status, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "missing"
}

func TestReconcileGoodBadFixed(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()

	// A good revision is applied, served, and persisted.
	h.rec.ReconcileOnce(ctx)
	st := h.rec.Status()
	if !st.Ready || st.Live == nil || st.LastAttempt.Result != apiv1.AttemptApplied {
		t.Fatalf("after a good revision: ready=%v live=%v attempt=%+v", st.Ready, st.Live, st.LastAttempt)
	}
	good := st.Live.ID
	if h.srv.Revision() != good {
		t.Fatalf("xds serves %q, want %q", h.srv.Revision(), good)
	}
	if lg, err := state.Load(h.stateDir); err != nil || lg.Revision != good {
		t.Fatalf("state dir: %v, %v; want revision %q persisted", lg, err, good)
	}
	for _, c := range []string{ConditionFetched, ConditionLoaded, ConditionChecked, ConditionRendered, ConditionApplied} {
		if got := condition(st, c); got != "True/Succeeded" {
			t.Errorf("%s = %s, want True/Succeeded", c, got)
		}
	}

	// A bad revision is rejected at check, with the finding's position;
	// the good one keeps serving.
	h.write(`{version: "v2", weight: 10}`, `{version: "v2", weight: 0}`)
	h.rec.ReconcileOnce(ctx)
	st = h.rec.Status()
	if st.Ready || st.Live.ID != good || h.srv.Revision() != good {
		t.Fatalf("after a bad revision: ready=%v live=%s served=%s; want not ready, %s still live and served", st.Ready, st.Live.ID, h.srv.Revision(), good)
	}
	a := st.LastAttempt
	if a.Result != apiv1.AttemptFailed || a.FailedStep != "check" || len(a.Diagnostics) == 0 {
		t.Fatalf("attempt = %+v, want failed at check with findings", a)
	}
	if got, want := a.Diagnostics[0].Error(), "mesh.cue:13:3: services.hello.routes[0].to: weights sum to 90, want 100"; got != want {
		t.Errorf("finding = %q, want %q", got, want)
	}
	if got := condition(st, ConditionReady); got != "False/CheckFailed" {
		t.Errorf("Ready = %s, want False/CheckFailed", got)
	}
	if got := condition(st, ConditionStalled); got != "True/CheckFailed" {
		t.Errorf("Stalled = %s, want True/CheckFailed", got)
	}
	if lg, _ := state.Load(h.stateDir); lg.Revision != good {
		t.Errorf("state dir holds %q, want the last good %q", lg.Revision, good)
	}

	// The same bad revision is not worked on again.
	started := a.StartedAt
	h.rec.ReconcileOnce(ctx)
	if st = h.rec.Status(); !st.LastAttempt.StartedAt.Equal(started) {
		t.Error("a known bad revision was reconciled again")
	}

	// A fix is applied and everything is True again.
	h.write(`{version: "v2", weight: 0}`, `{version: "v2", weight: 10}`)
	h.write(`{version: "v1", weight: 90}`, `{version: "v1", weight: 90}`)
	h.write(`timeout: "5s"`, `timeout: "6s"`)
	h.rec.ReconcileOnce(ctx)
	st = h.rec.Status()
	if !st.Ready || st.Live.ID == good || condition(st, ConditionStalled) != "False/Succeeded" {
		t.Fatalf("after the fix: ready=%v live=%s stalled=%s", st.Ready, st.Live.ID, condition(st, ConditionStalled))
	}

	// Metrics tell the same story.
	if n := testutil.ToFloat64(h.rec.metrics.total.WithLabelValues("applied")); n != 2 {
		t.Errorf("applied reconciles = %v, want 2", n)
	}
	if n := testutil.ToFloat64(h.rec.metrics.failures.WithLabelValues("check")); n != 1 {
		t.Errorf("check failures = %v, want 1", n)
	}
}

// TestRestartWithoutGit: a restart whose Git server is down serves the
// last good state, byte for byte, and says so.
func TestRestartWithoutGit(t *testing.T) {
	h := newHarness(t)
	h.rec.ReconcileOnce(context.Background())
	want, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}

	// Nothing listens on port 1: the fetch fails the way a down server does.
	down, err := source.NewGit(source.GitOptions{URL: "git://127.0.0.1:1/mesh.git", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// The harness wrote the state from a directory; say it came from this
	// remote, as a serve following it would have written it (restoring
	// another source's state is refused: TestRestoreRefusesOtherOrigin).
	want.Origin = state.Origin(down.Origin())
	if err := state.Save(h.stateDir, want); err != nil {
		t.Fatal(err)
	}
	srv, _ := xds.New(xds.Options{Logger: quiet})
	rec, err := New(Options{Source: down, Server: srv, StateDir: h.stateDir, Logger: quiet, RetryBase: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Restore(); err != nil {
		t.Fatal(err)
	}
	next := rec.ReconcileOnce(context.Background())
	st := rec.Status()
	if !st.Live.Restored || st.Live.ID != want.Revision || srv.Revision() != want.Revision {
		t.Fatalf("live = %+v, served %q; want %q restored", st.Live, srv.Revision(), want.Revision)
	}
	if got := condition(st, ConditionFetched); got != "False/FetchFailed" {
		t.Errorf("SourceFetched = %s, want False/FetchFailed", got)
	}
	if got := condition(st, ConditionReconciling); got != "True/Retrying" {
		t.Errorf("Reconciling = %s, want True (retrying)", got)
	}
	if got := condition(st, ConditionStalled); got != "False/Retrying" {
		t.Errorf("Stalled = %s, want False/Retrying (not Succeeded) while the fetch fails", got)
	}
	if next > 100*time.Millisecond {
		t.Errorf("retry in %v, want a short backoff after a transient failure", next)
	}
	if !rec.Ready() {
		t.Error("not ready while serving the restored state")
	}
	// Same resources, same versions.
	got, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Update, got.Update, protocmp.Transform()); diff != "" {
		t.Errorf("restored update differs:\n%s", diff)
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	r := &Reconciler{opts: Options{RetryBase: time.Second, RetryMax: 8 * time.Second}}
	prevMax := time.Duration(0)
	for n := 1; n <= 10; n++ {
		d := r.backoff(n)
		base := min(time.Second<<(n-1), 8*time.Second)
		if d < base*8/10 || d > base*12/10 {
			t.Errorf("backoff(%d) = %v, want %v ±20%%", n, d, base)
		}
		prevMax = max(prevMax, d)
	}
	if prevMax > 8*time.Second*12/10 {
		t.Errorf("backoff exceeded its bound: %v", prevMax)
	}
}

// TestOneServiceChangeReusesOtherClasses: after a commit that changes one
// service, every class that does not see that service keeps the very same
// config object, so the xDS server skips it and the schema cache re-checks
// only the changed entity.
func TestOneServiceChangeReusesOtherClasses(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	writeOther(t, h.dir)
	h.rec.ReconcileOnce(ctx)
	first := h.rec.served
	if first.Classes == nil || h.rec.Status().LastAttempt.Result != "applied" {
		t.Fatalf("first revision not applied: %+v", h.rec.Status().LastAttempt)
	}
	h.write(`{version: "v1", weight: 90}`, `{version: "v1", weight: 80}`)
	h.write(`{version: "v2", weight: 10}`, `{version: "v2", weight: 20}`)
	h.rec.ReconcileOnce(ctx)
	if got := h.rec.Status().LastAttempt.Result; got != "applied" {
		t.Fatalf("second revision: %s", got)
	}
	second := h.rec.served
	const untouched = "sidecar/default/other/v1" // calls nothing, so hello's weights are invisible to it
	if first.Classes[untouched] != second.Classes[untouched] {
		t.Errorf("%s got a new config object for a change it cannot see", untouched)
	}
	if first.Classes["sidecar/default/hello/v1"] == second.Classes["sidecar/default/hello/v1"] {
		t.Error("hello's own class kept its old config after its routes changed")
	}
	st := h.rec.opts.Load.Cache.Stats()
	if st.EntitiesChecked != 1 {
		t.Errorf("schema re-checked %d entities for a one-service change, want 1 (%+v)", st.EntitiesChecked, st)
	}
}
