package install

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/deploy/grafana"
)

// TestDashboardsConfigMap: install ships every dashboard of deploy/grafana
// byte for byte, labelled for Grafana's sidecar. (TestSameObjects proves
// kustomize and Helm ship the same, so Helm left Grafana's "{{...}}"
// legends alone.)
func TestDashboardsConfigMap(t *testing.T) {
	cm := dashboards()
	if cm.Namespace != Namespace || cm.Labels[DashboardLabel] != "1" || cm.Labels["app.kubernetes.io/part-of"] != Name {
		t.Errorf("ConfigMap %s/%s labels %v", cm.Namespace, cm.Name, cm.Labels)
	}
	names, _ := fs.Glob(grafana.FS(), "*.json")
	if len(names) < 2 || len(cm.Data) != len(names) {
		t.Fatalf("ConfigMap has %d dashboards, deploy/grafana %d", len(cm.Data), len(names))
	}
	legends := false
	for _, n := range names {
		b, _ := fs.ReadFile(grafana.FS(), n)
		if cm.Data["gitmesh-"+n] != string(b) {
			t.Errorf("gitmesh-%s differs from deploy/grafana/%s", n, n)
		}
		legends = legends || strings.Contains(string(b), "{{")
	}
	if !legends {
		t.Error("no dashboard has a {{label}} legend any more: TestSameObjects no longer proves Helm escapes them")
	}
}
