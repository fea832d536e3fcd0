// Package apiv1 holds the wire types of gitmesh's read-only status API
// (GET /api/v1/status and /api/v1/proxies; the console's /api/v1/graph and
// /api/v1/revisions in graph.go and console.go). It has no behaviour: the
// reconciler, the xDS server and the API handlers fill these types, and
// `gitmesh status` decodes the very same ones, so a field added here is
// served and read without a second copy to forget.
//
// The drift report (GET /api/v1/drift) is drift.Report: it is also the
// document committed to Git, so the drift package owns its schema; only how
// it is committed (DriftPublish) lives here.
package apiv1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Status is GET /api/v1/status: which revision is live, what was last tried
// and why it failed, the conditions, and the health of what serving
// depends on. It never holds a credential: Source is the source's String(),
// which has none.
type Status struct {
	Source      string             `json:"source"`
	Ready       bool               `json:"ready"`
	Live        *Revision          `json:"live,omitempty"`
	LastAttempt *Attempt           `json:"lastAttempt,omitempty"`
	Conditions  []metav1.Condition `json:"conditions"`
	// Classes and Resources count what is being served.
	Classes   int `json:"classes"`
	Resources int `json:"resources"`
	// Kubernetes is discovery's health; absent when discovery is off.
	Kubernetes *Kubernetes `json:"kubernetes,omitempty"`
	// Drift is how drift reports are committed; absent when drift is off.
	Drift *DriftPublish `json:"drift,omitempty"`
}

// Revision is one revision of the mesh repository: the live one, or the one
// an attempt tried. It is the one description of a revision the API serves.
type Revision struct {
	ID        string    `json:"id"`
	Short     string    `json:"short"`
	Message   string    `json:"message,omitempty"`
	Author    string    `json:"author,omitempty"`
	Committed time.Time `json:"committed,omitzero"`
	// AppliedAt is when it started being served; zero for attempts.
	AppliedAt time.Time `json:"appliedAt,omitzero"`
	// Restored is true when it was loaded from the state dir at start-up
	// rather than fetched.
	Restored bool `json:"restored,omitempty"`
}

// AttemptResult is how a reconcile of a new revision ended.
type AttemptResult string

// Attempt results.
const (
	AttemptApplied AttemptResult = "applied"
	AttemptFailed  AttemptResult = "failed"
)

// Attempt is the last reconcile of a new revision, successful or not.
type Attempt struct {
	Revision  Revision      `json:"revision"`
	StartedAt time.Time     `json:"startedAt"`
	Result    AttemptResult `json:"result"`
	// FailedStep is fetch, load, check, render or apply.
	FailedStep string `json:"failedStep,omitempty"`
	Error      string `json:"error,omitempty"`
	// Diagnostics are the revision's findings, errors first, at most 100;
	// DiagnosticsTotal counts all of them.
	Diagnostics      model.Diagnostics `json:"diagnostics,omitempty"`
	DiagnosticsTotal int               `json:"diagnosticsTotal,omitempty"`
	// TimingsMillis is how long each step took.
	TimingsMillis map[string]float64 `json:"timingsMillis"`
}

// Kubernetes is Kubernetes discovery's health: whether its caches are
// complete and current, and if not, why; and who leads drift commits.
type Kubernetes struct {
	// Synced is true once every informer has listed.
	Synced bool `json:"synced"`
	// Reachable is false while the API server cannot be reached; the
	// endpoints served meanwhile are the last known ones.
	Reachable bool `json:"reachable"`
	// Error is the last error that makes discovery unreliable.
	Error string `json:"error,omitempty"`
	// UnreachableSince is when the API server was first found unreachable.
	UnreachableSince time.Time `json:"unreachableSince,omitzero"`
	// LastEvent is when the last watched change arrived.
	LastEvent time.Time `json:"lastEvent,omitzero"`
	Leader    *Leader   `json:"leader,omitempty"`
}

// Leader is this replica's view of the drift writer's lease.
type Leader struct {
	Identity string `json:"identity"`
	Leading  bool   `json:"leading"`
	Holder   string `json:"holder,omitempty"`
}

// DriftPublish says how committing drift reports goes.
type DriftPublish struct {
	Enabled      bool      `json:"enabled"`
	Leader       bool      `json:"leader"`
	Path         string    `json:"path,omitempty"`
	LastCommit   string    `json:"lastCommit,omitempty"`
	LastCommitAt time.Time `json:"lastCommitAt,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	LastErrorAt  time.Time `json:"lastErrorAt,omitzero"`
}
