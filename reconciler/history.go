package reconciler

import (
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/render"
)

// maxHistory bounds the applied revisions kept for the console: enough to
// see a day of pushes, small enough to never matter for memory.
const maxHistory = 50

// history is what the console reads besides the status: the applied
// revisions, newest first, and the rendered bundles of the live and the
// previous revision (the proxies' config dumps and what the last revision
// changed for each). Guarded by Reconciler.mu, written by the loop
// goroutine.
type history struct {
	applied []apiv1.Revision
	// bundle is the live revision's bundle, prev the one it replaced (of
	// another revision: endpoint refreshes replace bundle only). Both are
	// nil after a restore from disk until a revision is rendered.
	bundle, prev   *render.Bundle
	prevRevision   string
	bundleRevision string
	// liveTests are the live revision's traffic test verdicts, failedTests
	// those of the newest attempt when it failed after running its tests
	// (tests.go).
	liveTests, failedTests *apiv1.TestRun
}

// record notes an applied revision, newest first, dropping the oldest.
func (h *history) record(rev apiv1.Revision) {
	if len(h.applied) > 0 && h.applied[0].ID == rev.ID {
		// A restored revision loaded again: one entry, the newer facts.
		h.applied[0] = rev
		return
	}
	h.applied = append([]apiv1.Revision{rev}, h.applied[:min(len(h.applied), maxHistory-1)]...)
}

// served notes the bundle now served for revision.
func (h *history) served(revision string, b *render.Bundle) {
	if h.bundle != nil && h.bundleRevision != revision {
		h.prev, h.prevRevision = h.bundle, h.bundleRevision
	}
	h.bundle, h.bundleRevision = b, revision
}

// Revisions returns the applied revisions, newest first, at most 50: the
// console's history. Safe for concurrent use.
func (r *Reconciler) Revisions() []apiv1.Revision {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]apiv1.Revision{}, r.hist.applied...)
}

// LiveBundles returns the bundle served for the live revision and the
// bundle of the revision before it (nil when there was none since start,
// or after a restore from disk until a revision is rendered), with their
// revision ids. Callers must not modify them. Safe for concurrent use.
func (r *Reconciler) LiveBundles() (revision string, live *render.Bundle, prevRevision string, prev *render.Bundle) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.hist.bundleRevision, r.hist.bundle, r.hist.prevRevision, r.hist.prev
}
