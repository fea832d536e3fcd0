package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gitmesh/gitmesh/reconciler/state"
)

// breakStateDir makes writing the last good state fail and returns the
// repair. A read-only dir does it for a normal user; root writes through
// mode bits, so then a directory squats on the state file's name and the
// atomic rename onto it fails, as a full disk makes a write fail.
func breakStateDir(t *testing.T, dir string) (repair func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return func() {
			if err := os.Chmod(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
	}
	file := filepath.Join(dir, "last-good.gob")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPersistFailureIsACondition: when the state dir cannot be written the
// new revision is served, but status is not Ready (Persisted=False,
// PersistFailed), a metric counts it, the write is retried with backoff,
// and once the dir is writable again the retry saves the served revision.
func TestPersistFailureIsACondition(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.rec.ReconcileOnce(ctx)
	if got := condition(h.rec.Status(), ConditionPersisted); got != "True/Succeeded" {
		t.Fatalf("Persisted = %s after a good save, want True/Succeeded", got)
	}
	old := h.rec.Status().Live.ID
	repair := breakStateDir(t, h.stateDir)

	h.write(`timeout: "5s"`, `timeout: "7s"`)
	next := h.rec.ReconcileOnce(ctx)
	st := h.rec.Status()
	if st.Live.ID == old || h.srv.Revision() != st.Live.ID || st.LastAttempt.Result != "applied" {
		t.Fatalf("live %s served %s attempt %s; want the new revision applied and served", st.Live.ID, h.srv.Revision(), st.LastAttempt.Result)
	}
	served := st.Live.ID
	for typ, want := range map[string]string{
		ConditionPersisted: "False/PersistFailed", ConditionReady: "False/PersistFailed",
		ConditionApplied: "True/Succeeded", ConditionReconciling: "True/Retrying", ConditionStalled: "False/Retrying",
	} {
		if got := condition(st, typ); got != want {
			t.Errorf("%s = %s, want %s", typ, got, want)
		}
	}
	if msg := conditionMessage(st, ConditionReady); !strings.Contains(msg, "save state") || !strings.Contains(msg, "a restart would serve an older revision") {
		t.Errorf("Ready message %q, want the write error and what it means", msg)
	}
	if next > 2*time.Second {
		t.Errorf("next attempt in %v, want a backoff retry (1s ±20%%), not the 1h interval", next)
	}
	if n := testutil.ToFloat64(h.rec.metrics.persistFailures); n != 1 {
		t.Errorf("gitmesh_state_persist_failures_total = %v, want 1", n)
	}

	// Still broken: the retry fails again, backs off further.
	next2 := h.rec.ReconcileOnce(ctx)
	if n := testutil.ToFloat64(h.rec.metrics.persistFailures); n != 2 {
		t.Errorf("after a retry: failures = %v, want 2", n)
	}
	if next2 < 1500*time.Millisecond || next2 > 3*time.Second {
		t.Errorf("second retry in %v, want about 2s", next2)
	}

	// Writable again: the next attempt saves the served revision.
	repair()
	h.rec.ReconcileOnce(ctx)
	st = h.rec.Status()
	if got := condition(st, ConditionPersisted); got != "True/Succeeded" || !st.Ready {
		t.Fatalf("after repair: Persisted = %s, ready %v; want True and ready", got, st.Ready)
	}
	if got := condition(st, ConditionReconciling); got != "False/Idle" {
		t.Errorf("Reconciling = %s after the retry succeeded, want False/Idle", got)
	}
	lg, err := state.Load(h.stateDir)
	if err != nil || lg.Revision != served {
		t.Fatalf("state dir: %v, %v; want the served %s", lg, err, served)
	}
}
