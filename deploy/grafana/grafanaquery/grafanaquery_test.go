package grafanaquery

import (
	"testing"

	"github.com/gitmesh/gitmesh/deploy/grafana"
)

// testVars are values for every template variable the dashboards use;
// tests that run the queries use them too.
var testVars = map[string]string{
	"job": "gitmesh", "namespace": ".*", "service": ".*", "version": ".*",
	"__rate_interval": "1m", "datasource": "prometheus",
}

// TestQueriesParse parses every expression of every dashboard with
// Prometheus' own parser. Running them against a real Prometheus is
// cmd/gitmesh's TestPrometheusEdgeRates.
func TestQueriesParse(t *testing.T) {
	qs, err := Queries(grafana.FS())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, q := range qs {
		seen[q.Dashboard] = true
		expr, err := Expand(q.Expr, testVars)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		names, err := Metrics(expr)
		if err != nil {
			t.Errorf("%s: %v\n%s", q, err, expr)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s selects no metric: %s", q, expr)
		}
	}
	for _, want := range []string{"controlplane.json", "mesh.json"} {
		if !seen[want] {
			t.Errorf("no queries from %s", want)
		}
	}
}

func TestExpandRefusesUnknownVariables(t *testing.T) {
	if _, err := Expand(`up{job="$nope"}`, testVars); err == nil {
		t.Fatal("Expand accepted an unknown variable")
	}
	got, err := Expand(`rate(x{job=~"${job}"}[$__rate_interval])`, testVars)
	if err != nil || got != `rate(x{job=~"gitmesh"}[1m])` {
		t.Fatalf("Expand = %q, %v", got, err)
	}
}
