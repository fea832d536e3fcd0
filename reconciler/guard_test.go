package reconciler

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// conditionMessage returns the message of condition typ.
func conditionMessage(st apiv1.Status, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Message
		}
	}
	return ""
}

// TestDeletingEveryMeshFileKeepsServing: a commit that deletes every mesh
// file is refused at check (GM0504); the live revision keeps serving, on
// the xDS server and in the state dir, and status says why.
func TestDeletingEveryMeshFileKeepsServing(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rec.ReconcileOnce(ctx)
	good := h.rec.Status().Live.ID
	if err := os.Remove(filepath.Join(h.dir, "mesh.cue")); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	st := h.rec.Status()
	if st.Live.ID != good || h.srv.Revision() != good || st.Classes != 2 {
		t.Fatalf("live %s, served %s, %d classes; want %s still live with its 2 classes", st.Live.ID, h.srv.Revision(), st.Classes, good)
	}
	if got := condition(st, ConditionReady); got != "False/CheckFailed" {
		t.Errorf("Ready = %s, want False/CheckFailed", got)
	}
	a := st.LastAttempt
	if a.Result != apiv1.AttemptFailed || a.FailedStep != "check" || len(a.Diagnostics) != 1 || a.Diagnostics[0].Code != "GM0504" {
		t.Fatalf("last attempt = %+v, want failed at check with GM0504", a)
	}
	if msg := conditionMessage(st, ConditionReady); !strings.Contains(msg, "the mesh has no services") || !strings.Contains(msg, "serving the last good revision") {
		t.Errorf("Ready message = %q, want the finding and that the last good revision serves", msg)
	}
	if lg, err := state.Load(h.stateDir); err != nil || lg.Revision != good {
		t.Errorf("state dir: %v; want %s kept", err, good)
	}
}

// TestClassLossGuard: a revision that removes more than --max-class-loss of
// the live classes is refused with ClassLossRefused and the live revision
// keeps serving; mesh.allowClassLoss lets the same cut through; a smaller
// cut passes without it.
func TestClassLossGuard(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	writeOther(t, h.dir)
	h.rec.ReconcileOnce(ctx)
	st := h.rec.Status()
	good := st.Live.ID
	if st.Classes != 3 {
		t.Fatalf("%d classes live, want 3 (hello v1, v2, other v1)", st.Classes)
	}

	// Only other stays: 2 of 3 classes lost, over the default 50%.
	if err := os.WriteFile(filepath.Join(h.dir, "mesh.cue"), []byte("package mesh\n\nmesh: name: \"minimal\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	st = h.rec.Status()
	if st.Live.ID != good || h.srv.Revision() != good || st.Classes != 3 {
		t.Fatalf("live %s, served %s, %d classes; want %s still live with 3 classes", st.Live.ID, h.srv.Revision(), st.Classes, good)
	}
	for typ, want := range map[string]string{
		ConditionApplied: "False/ClassLossRefused", ConditionReady: "False/ClassLossRefused",
		ConditionStalled: "True/ClassLossRefused", ConditionRendered: "True/Succeeded",
	} {
		if got := condition(st, typ); got != want {
			t.Errorf("%s = %s, want %s", typ, got, want)
		}
	}
	a := st.LastAttempt
	wantErr := `removes 2 of 3 live proxy classes (67%, more than --max-class-loss 50%): "sidecar/default/hello/v1", "sidecar/default/hello/v2"; set mesh.allowClassLoss: true`
	if a.Result != apiv1.AttemptFailed || a.FailedStep != "guard" || !strings.Contains(a.Error, wantErr) {
		t.Fatalf("last attempt: %s at %q: %q; want failed at guard with …%s…", a.Result, a.FailedStep, a.Error, wantErr)
	}
	if n := testutil.ToFloat64(h.rec.metrics.classLossRefused); n != 1 {
		t.Errorf("gitmesh_class_loss_refused_total = %v, want 1", n)
	}
	if lg, err := state.Load(h.stateDir); err != nil || lg.Revision != good {
		t.Errorf("state dir: %v; want %s kept", err, good)
	}

	// The repository says so: the cut is applied.
	if err := os.WriteFile(filepath.Join(h.dir, "mesh.cue"), []byte("package mesh\n\nmesh: {name: \"minimal\", allowClassLoss: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	st = h.rec.Status()
	if st.Live.ID == good || st.Classes != 1 || !st.Ready {
		t.Fatalf("with allowClassLoss: live %s, %d classes, ready %v; want the new revision with 1 class", st.Live.ID, st.Classes, st.Ready)
	}
}

// TestClassLossWithinLimit: losing one class of three under a 50% limit is
// a normal change.
func TestClassLossWithinLimit(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	writeOther(t, h.dir)
	h.rec.ReconcileOnce(ctx)
	if err := os.Remove(filepath.Join(h.dir, "other.cue")); err != nil {
		t.Fatal(err)
	}
	h.rec.ReconcileOnce(ctx)
	if st := h.rec.Status(); !st.Ready || st.Classes != 2 || st.LastAttempt.Result != apiv1.AttemptApplied {
		t.Fatalf("ready %v, %d classes, attempt %+v; want 1 of 3 classes removed and applied", st.Ready, st.Classes, st.LastAttempt)
	}
}

// TestRestoreRefusesOtherOrigin: the case. A state dir written for
// --path staging is not served for --path prod of the same repository
// while Git is unreachable: Restore fails naming both, nothing is served,
// and status says why.
func TestRestoreRefusesOtherOrigin(t *testing.T) {
	h := newHarness(t)
	h.rec.ReconcileOnce(context.Background())
	lg, err := state.Load(h.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	gitAt := func(path string) *source.GitSource {
		// Nothing listens on port 1: Git is unreachable.
		g, err := source.NewGit(source.GitOptions{URL: "git://127.0.0.1:1/mesh.git", Path: path, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	lg.Origin = state.Origin(gitAt("staging").Origin())
	if err := state.Save(h.stateDir, lg); err != nil {
		t.Fatal(err)
	}

	srv, _ := xds.New(xds.Options{Logger: quiet})
	rec, err := New(Options{Source: gitAt("prod/"), Server: srv, StateDir: h.stateDir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	err = rec.Restore()
	if !errors.Is(err, state.ErrOtherOrigin) {
		t.Fatalf("Restore = %v, want ErrOtherOrigin", err)
	}
	want := "holds the last good state of git://127.0.0.1:1/mesh.git branch main path staging, not of git://127.0.0.1:1/mesh.git branch main path prod"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want …%s…", err, want)
	}
	st := rec.Status()
	if st.Live != nil || srv.Revision() != "" || rec.Ready() {
		t.Fatalf("live %+v, served %q; want nothing served", st.Live, srv.Revision())
	}
	if got := condition(st, ConditionReady); got != "False/StateOfOtherSource" {
		t.Errorf("Ready = %s, want False/StateOfOtherSource", got)
	}
	if msg := conditionMessage(st, ConditionReady); !strings.Contains(msg, want) {
		t.Errorf("Ready message %q, want …%s…", msg, want)
	}

	// The staging serve restores its own.
	rec2, err := New(Options{Source: gitAt("./staging"), Server: srv, StateDir: h.stateDir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec2.Restore(); err != nil || srv.Revision() != lg.Revision {
		t.Fatalf("staging restore: %v, served %q; want %s", err, srv.Revision(), lg.Revision)
	}
}
