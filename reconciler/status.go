package reconciler

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/schema/model"
)

// maxStatusDiagnostics bounds the findings kept in status: a broken
// 10,000-service commit must not make the status API megabytes long.
const maxStatusDiagnostics = 100

// Status is what GET /api/v1/status returns: which revision is live, what
// was last tried and why it failed, and the conditions. It never holds a
// credential: the source is named by its String(), which has none.
type Status struct {
	Source      string             `json:"source"`
	Ready       bool               `json:"ready"`
	Live        *RevisionInfo      `json:"live,omitempty"`
	LastAttempt *Attempt           `json:"lastAttempt,omitempty"`
	Conditions  []metav1.Condition `json:"conditions"`
	// Classes and Resources count what is being served.
	Classes   int `json:"classes"`
	Resources int `json:"resources"`
}

// RevisionInfo describes one revision of the mesh repository.
type RevisionInfo struct {
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

// Attempt is the last reconcile of a new revision, successful or not.
type Attempt struct {
	Revision  RevisionInfo `json:"revision"`
	StartedAt time.Time    `json:"startedAt"`
	// Result is "applied" or "failed".
	Result string `json:"result"`
	// FailedStep is fetch, load, check, render or apply.
	FailedStep string `json:"failedStep,omitempty"`
	Error      string `json:"error,omitempty"`
	// Diagnostics are the revision's findings, errors first, at most 100.
	Diagnostics      model.Diagnostics `json:"diagnostics,omitempty"`
	DiagnosticsTotal int               `json:"diagnosticsTotal,omitempty"`
	// TimingsMillis is how long each step took.
	TimingsMillis map[string]float64 `json:"timingsMillis"`
}

func revisionInfo(rev source.Revision) RevisionInfo {
	return RevisionInfo{ID: rev.ID, Short: rev.Short, Message: firstLine(rev.Message), Author: rev.Author, Committed: rev.Time}
}

// firstLine keeps status compact: a commit's subject says what it is.
func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// capDiagnostics keeps errors first and at most maxStatusDiagnostics.
func capDiagnostics(ds model.Diagnostics) (model.Diagnostics, int) {
	out := make(model.Diagnostics, 0, min(len(ds), maxStatusDiagnostics))
	for _, sev := range []model.Severity{model.SeverityError, model.SeverityWarning, model.SeverityInfo} {
		for _, d := range ds {
			if d.Severity == sev && len(out) < maxStatusDiagnostics {
				out = append(out, d)
			}
		}
	}
	return out, len(ds)
}
