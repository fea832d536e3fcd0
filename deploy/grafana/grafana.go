// Package grafana holds gitmesh's Grafana dashboards (controlplane.json,
// mesh.json). The JSON files are the product: install ships them as a
// ConfigMap for Grafana's dashboard sidecar (internal/install), or import
// them into Grafana (Dashboards → Import) and pick the Prometheus data
// source. It imports nothing but the standard library, so the gitmesh
// binary can embed them; reading their queries back (with Prometheus'
// parser) is grafanaquery's job.
package grafana

import (
	"embed"
	"io/fs"
)

//go:embed *.json
var files embed.FS

// FS returns the dashboards, one JSON file each.
func FS() fs.FS { return files }
