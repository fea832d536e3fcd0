package reconciler

import (
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/schema/model"
)

// maxStatusDiagnostics bounds the findings kept in status: a broken
// 10,000-service commit must not make the status API megabytes long.
const maxStatusDiagnostics = 100

// servedID is the id of the revision being served, "" before the first.
// The served revision is kept once, as status.Live; r.mu must be held, or
// the caller must be the loop goroutine, its only writer.
func (r *Reconciler) servedID() string {
	if r.status.Live == nil {
		return ""
	}
	return r.status.Live.ID
}

// revisionInfo is how the status API describes rev.
func revisionInfo(rev source.Revision) apiv1.Revision {
	return apiv1.Revision{ID: rev.ID, Short: rev.Short, Message: firstLine(rev.Message), Author: rev.Author, Committed: rev.Time}
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
