package install

import (
	"fmt"
	"io/fs"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/deploy/grafana"
)

// DashboardsName is the ConfigMap that carries deploy/grafana's dashboards.
const DashboardsName = Name + "-grafana-dashboards"

// DashboardLabel marks a ConfigMap for Grafana's dashboard sidecar (the
// kiwigrid k8s-sidecar the Grafana Helm chart and kube-prometheus-stack
// run, whose default label is grafana_dashboard): it writes each key of a
// labelled ConfigMap into Grafana's provisioning folder as a dashboard
// file. A Grafana without the sidecar ignores the ConfigMap.
const DashboardLabel = "grafana_dashboard"

// dashboards is deploy/grafana's dashboards as one ConfigMap, one key per
// file. The keys carry a "gitmesh-" prefix because the sidecar writes
// every labelled ConfigMap's keys into one folder, where another
// product's mesh.json would replace ours. The files are embedded in the
// binary, so failing to read one is a broken build: it panics.
func dashboards() *corev1.ConfigMap {
	names, err := fs.Glob(grafana.FS(), "*.json")
	if err != nil || len(names) == 0 {
		panic(fmt.Sprintf("install: no embedded Grafana dashboards: %v", err))
	}
	slices.Sort(names)
	data := make(map[string]string, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(grafana.FS(), n)
		if err != nil {
			panic(fmt.Sprintf("install: embedded Grafana dashboard %s: %v", n, err))
		}
		data[Name+"-"+n] = string(b)
	}
	meta := objMeta(DashboardsName, Namespace)
	meta.Labels[DashboardLabel] = "1"
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       data,
	}
}
