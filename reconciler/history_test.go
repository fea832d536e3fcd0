package reconciler

import (
	"context"
	"fmt"
	"testing"
	"time"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// TestHistory: the console's history holds applied revisions newest
// first, never a failed one, and the bundles of the live and the previous
// revision; a restart restores the live revision into it.
func TestHistory(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if rev, live, _, prev := h.rec.LiveBundles(); rev != "" || live != nil || prev != nil || len(h.rec.Revisions()) != 0 {
		t.Fatal("history before the first revision is not empty")
	}
	h.rec.ReconcileOnce(ctx)
	first := h.rec.Status().Live.ID
	rev, live, prevRev, prev := h.rec.LiveBundles()
	if rev != first || live == nil || prev != nil || prevRev != "" {
		t.Fatalf("after one revision: %q %v %q %v", rev, live != nil, prevRev, prev != nil)
	}
	if rev, m := h.rec.LiveMesh(); rev != first || m == nil || h.rec.Mesh() != m {
		t.Fatalf("live mesh of %q: %v", rev, m)
	}

	h.write(`{version: "v2", weight: 10}`, `{version: "v2", weight: 0}`) // fails check
	h.rec.ReconcileOnce(ctx)
	h.write(`{version: "v2", weight: 0}`, `{version: "v2", weight: 10}`)
	h.write(`timeout: "5s"`, `timeout: "6s"`)
	h.rec.ReconcileOnce(ctx)
	second := h.rec.Status().Live.ID
	revs := h.rec.Revisions()
	if len(revs) != 2 || revs[0].ID != second || revs[1].ID != first || revs[0].AppliedAt.IsZero() {
		t.Fatalf("revisions = %+v, want %s then %s, both applied", revs, second, first)
	}
	rev, live, prevRev, prev = h.rec.LiveBundles()
	if rev != second || prevRev != first || live == nil || prev == nil || live == prev {
		t.Fatalf("bundles: live %q, previous %q", rev, prevRev)
	}

	// The ring is bounded.
	var hist history
	for i := range maxHistory + 10 {
		hist.record(revisionInfoFor(i))
	}
	if len(hist.applied) != maxHistory || hist.applied[0].ID != revisionInfoFor(maxHistory+9).ID {
		t.Errorf("ring holds %d, newest %q", len(hist.applied), hist.applied[0].ID)
	}

	// A restart restores the live revision into the history; its bundle
	// comes back with the first reconcile.
	srv, err := xds.New(xds.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := New(Options{Source: h.rec.opts.Source, Server: srv, StateDir: h.stateDir, Logger: quiet, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Restore(); err != nil {
		t.Fatal(err)
	}
	if revs := rec.Revisions(); len(revs) != 1 || revs[0].ID != second || !revs[0].Restored {
		t.Fatalf("after a restore: %+v", revs)
	}
	if _, live, _, _ := rec.LiveBundles(); live != nil {
		t.Error("a restored state has a bundle before it is rendered")
	}
	rec.ReconcileOnce(ctx)
	if revs := rec.Revisions(); len(revs) != 1 || revs[0].ID != second {
		t.Errorf("the restored revision loaded again is one entry: %+v", revs)
	}
	if rev, live, _, _ := rec.LiveBundles(); rev != second || live == nil {
		t.Errorf("after the first reconcile since the restore: bundle of %q", rev)
	}
}

func revisionInfoFor(i int) apiv1.Revision {
	return apiv1.Revision{ID: fmt.Sprintf("rev%03d", i)}
}
