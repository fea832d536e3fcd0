package api

import (
	"net/http"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// DriftResponse is GET /api/v1/drift: the latest drift report, exactly as
// committed to the status branch, and how committing goes.
type DriftResponse struct {
	*drift.Report
	Publish apiv1.DriftPublish `json:"publish"`
}

// serveDrift answers with JSON, or with the committed YAML bytes for
// ?format=yaml (what `git show gitmesh-status:status/CLUSTER.yaml` holds
// once the meaning has been committed).
func serveDrift(w http.ResponseWriter, r *http.Request, src DriftSource) {
	rep := src.Report()
	if rep == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "no drift report yet"})
		return
	}
	switch r.URL.Query().Get("format") {
	case "", "json":
		writeJSON(w, http.StatusOK, DriftResponse{Report: rep, Publish: src.Publish()})
	case "yaml":
		b, err := rep.YAML()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "format must be json or yaml"})
	}
}
