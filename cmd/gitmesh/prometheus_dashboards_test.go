package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/deploy/grafana"
	"github.com/gitmesh/gitmesh/deploy/grafana/grafanaquery"
	"github.com/gitmesh/gitmesh/internal/promtest"
)

// sparseMetrics have no series in TestPrometheusEdgeRates: a counter vector
// shows a series only once something is counted, and nothing here NACKs,
// refuses a connection or asks the Kubernetes-only CA. Their queries must
// still run; their names must be ones gitmesh registers (a typo fails).
var sparseMetrics = map[string]string{
	"gitmesh_xds_nacks_total":                "no proxy NACKs in this test",
	"gitmesh_xds_rejected_streams_total":     "no stream is refused",
	"gitmesh_xds_rejected_connections_total": "no connection is refused",
	"gitmesh_ca_requests_total":              "certsvc runs with Kubernetes only",
}

// checkDashboards makes a revision fail (so the failure panels have data),
// then runs every query of deploy/grafana against the test's Prometheus and
// wants data from each.
func checkDashboards(t *testing.T, prom *promtest.Prometheus, meshDir string) {
	if err := os.WriteFile(filepath.Join(meshDir, "broken.cue"), []byte("this is { not cue\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a failed reconcile in Prometheus", func() bool {
		v, err := prom.Query(context.Background(), `gitmesh_reconcile_total{result="failed"}`)
		return err == nil && len(v) > 0 && v[0].Value > 0
	})
	// Two more scrapes, so increase() over the window sees the failure.
	time.Sleep(2 * promtest.ScrapeInterval)

	qs, err := grafanaquery.Queries(grafana.FS())
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"job": "gitmesh", "namespace": ".*", "service": ".*", "version": ".*",
		"__rate_interval": "5m", "datasource": "prometheus"}
	source := registeredNames(t)
	for _, q := range qs {
		expr, err := grafanaquery.Expand(q.Expr, vars)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		names, err := grafanaquery.Metrics(expr)
		if err != nil {
			t.Errorf("%s: Prometheus' parser: %v", q, err)
			continue
		}
		vec, err := prom.Query(context.Background(), expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q, err, expr)
			continue
		}
		if len(vec) > 0 {
			continue
		}
		sparse := true
		for _, n := range names {
			if _, ok := sparseMetrics[n]; !ok {
				sparse = false
			} else if !strings.Contains(source, `"`+n+`"`) {
				t.Errorf("%s: %s is not a metric gitmesh registers", q, n)
			}
		}
		if !sparse {
			t.Errorf("%s returned no data from the test's Prometheus:\n%s", q, expr)
		}
	}
}

// registeredNames is the Go source of reconciler/, where gitmesh names its
// metrics.
func registeredNames(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	root := filepath.Join("..", "..", "reconciler")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		raw, err := os.ReadFile(p)
		b.Write(raw)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
