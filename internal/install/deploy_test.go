package install

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/internal/kubetest"
)

const (
	kustomizeDir = "../../deploy/kustomize"
	chartDir     = "../../deploy/helm/gitmesh"
	chartVersion = "0.1.0"
)

// TestDeployFiles keeps deploy/ generated from Objects: -update rewrites it.
func TestDeployFiles(t *testing.T) {
	k, err := KustomizeFiles()
	if err != nil {
		t.Fatal(err)
	}
	h, err := HelmFiles(chartVersion)
	if err != nil {
		t.Fatal(err)
	}
	for dir, files := range map[string]map[string][]byte{kustomizeDir: k, chartDir: h} {
		for name, b := range files {
			p := filepath.Join(dir, name)
			if golden.Updating() {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			golden.Check(t, p, b)
		}
	}
}

// kustomizeBuild is `kustomize build deploy/kustomize`.
func kustomizeBuild(t *testing.T) []byte {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), kustomizeDir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// helmTemplate is `helm template gitmesh deploy/helm/gitmesh` with the
// given values over the chart's.
func helmTemplate(t *testing.T, values map[string]any) []byte {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "gitmesh", Namespace: Namespace, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		b.WriteString("\n---\n")
		b.WriteString(out[n])
	}
	return b.Bytes()
}

// parse splits a YAML stream into objects, skipping empty documents.
func parse(t *testing.T, y []byte) []*unstructured.Unstructured {
	t.Helper()
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(y), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("parse: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// byRef indexes objects by Ref; a name twice is a failure.
func byRef(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	m := map[string]map[string]any{}
	for _, o := range objs {
		r := o.GetAPIVersion() + " " + Ref(o)
		if _, dup := m[r]; dup {
			t.Fatalf("%s twice", r)
		}
		m[r] = o.Object
	}
	return m
}

// TestSameObjects: gitmesh install --dry-run, kustomize build and helm
// template give the same objects, field for field.
func TestSameObjects(t *testing.T) {
	want, err := Unstructured(Objects(Defaults()))
	if err != nil {
		t.Fatal(err)
	}
	// Through YAML and back, so numbers compare as the parsers give them.
	y, err := YAML(want)
	if err != nil {
		t.Fatal(err)
	}
	w := byRef(t, parse(t, y))
	if len(w) != 11 {
		t.Errorf("install has %d objects, want 11", len(w))
	}
	for name, got := range map[string][]byte{
		"kustomize build": kustomizeBuild(t),
		"helm template":   helmTemplate(t, nil),
	} {
		if d := cmp.Diff(w, byRef(t, parse(t, got))); d != "" {
			t.Errorf("%s differs from gitmesh install (-install +%s):\n%s", name, name, d)
		}
	}
}

// TestHelmValues: the chart's values reach the Deployment.
func TestHelmValues(t *testing.T) {
	got := byRef(t, parse(t, helmTemplate(t, map[string]any{
		"image":     "registry.example/gitmesh:v9",
		"replicas":  3,
		"resources": map[string]any{"requests": map[string]any{"cpu": "2"}},
	})))
	dep := &unstructured.Unstructured{Object: got["apps/v1 Deployment/"+Namespace+"/"+Name]}
	if r, _, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "replicas"); fmt.Sprint(r) != "3" {
		t.Errorf("replicas = %v, want 3", r)
	}
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := cs[0].(map[string]any)
	if c["image"] != "registry.example/gitmesh:v9" {
		t.Errorf("image = %v", c["image"])
	}
	// Helm merges maps with the chart's values: the memory figures stay.
	want := map[string]any{
		"requests": map[string]any{"cpu": "2", "memory": "512Mi"},
		"limits":   map[string]any{"memory": "2Gi"},
	}
	if d := cmp.Diff(want, c["resources"]); d != "" {
		t.Errorf("resources (-want +got):\n%s", d)
	}
}

// TestHelmSchema: the chart refuses values the Deployment cannot take.
func TestHelmSchema(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]any{
		{"replicas": 0},
		{"replicas": "two"},
		{"image": ""},
		{"imagee": "typo"},
	} {
		_, err := chartutil.ToRenderValues(ch, bad, chartutil.ReleaseOptions{Name: "gitmesh", Namespace: Namespace, IsInstall: true}, chartutil.DefaultCapabilities)
		if err == nil {
			t.Errorf("values %v accepted", bad)
		}
	}
}

// TestHelmLint: helm lint finds nothing above info level.
func TestHelmLint(t *testing.T) {
	l := lint.All(chartDir, nil, Namespace, false)
	for _, m := range l.Messages {
		if m.Severity > support.InfoSev {
			t.Errorf("helm lint: %s", m)
		}
	}
}

// TestLeastPrivilege pins what the control plane may do, so a new
// permission is a visible change of this test.
func TestLeastPrivilege(t *testing.T) {
	objs, err := Unstructured(Objects(Defaults()))
	if err != nil {
		t.Fatal(err)
	}
	// The dashboards' JSON is Grafana's prose ("secrets-only pushes"),
	// not what the control plane may do: it is left out of the scan.
	var scanned []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && o.GetName() == DashboardsName {
			o = o.DeepCopy()
			unstructured.RemoveNestedField(o.Object, "data")
		}
		scanned = append(scanned, o)
	}
	y, _ := YAML(scanned)
	s := string(y)
	for _, forbidden := range []string{"privileged: true", "allowPrivilegeEscalation: true", "'*'", "secrets", "hostNetwork", "hostPath"} {
		if strings.Contains(s, forbidden) {
			t.Errorf("install contains %q", forbidden)
		}
	}
	var rules []string
	for _, o := range objs {
		rs, _, _ := unstructured.NestedSlice(o.Object, "rules")
		for _, r := range rs {
			r := r.(map[string]any)
			rules = append(rules, o.GetKind()+" "+strings.Join(strs(r["apiGroups"]), ",")+"/"+strings.Join(strs(r["resources"]), ",")+
				" "+strings.Join(strs(r["resourceNames"]), ",")+": "+strings.Join(strs(r["verbs"]), ","))
		}
	}
	want := []string{
		"ClusterRole /services,pods : get,list,watch",
		"ClusterRole discovery.k8s.io/endpointslices : get,list,watch",
		"ClusterRole /namespaces : list,watch",
		"ClusterRole /configmaps : list,watch,create,patch",
		"ClusterRole authentication.k8s.io/tokenreviews : create",
		"ClusterRole admissionregistration.k8s.io/mutatingwebhookconfigurations gitmesh-sidecar-injector: get,update,patch",
		"Role coordination.k8s.io/leases : get,create,update",
	}
	if d := cmp.Diff(want, rules); d != "" {
		t.Errorf("RBAC rules (-want +got):\n%s", d)
	}
}

func strs(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}

func TestMain(m *testing.M) { kubetest.Main(m) }
