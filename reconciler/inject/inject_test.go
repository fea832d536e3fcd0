package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/schema/model"
)

// testMesh declares a sidecar service with three versions, a proxyless
// one and one outside the data plane.
func testMesh() *model.Mesh {
	return &model.Mesh{Services: map[string]*model.Service{
		"reviews": {Name: "reviews", Namespace: "bookinfo", ServiceAccount: "bookinfo-reviews", Proxy: model.ProxySidecar,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}, "v2": {Name: "v2"}, "v3": {Name: "v3"}}},
		"greeter": {Name: "greeter", Namespace: "grpc", ServiceAccount: "greeter", Proxy: model.ProxyProxyless,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
		"legacy": {Name: "legacy", Namespace: "bookinfo", ServiceAccount: "default", Proxy: model.ProxyNone,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
	}}
}

func readPod(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "in", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p corev1.Pod
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &p
}

// goldenResult is what a golden file holds: the decision and the patch,
// decoded so the file is indented and diffs read line by line.
type goldenResult struct {
	Error     string          `json:"error,omitempty"`
	Class     string          `json:"class,omitempty"`
	Skipped   string          `json:"skipped,omitempty"`
	Warnings  []string        `json:"warnings,omitempty"`
	Unmatched bool            `json:"unmatched,omitempty"`
	Reason    string          `json:"reason,omitempty"`
	Patch     json.RawMessage `json:"patch,omitempty"`
}

func TestInjectGolden(t *testing.T) {
	native := Options{NativeSidecars: true}
	cases := []struct {
		name, in string
		opts     Options
	}{
		{"sidecar-native", "reviews", native},
		{"sidecar-containers", "reviews", Options{}},
		{"sidecar-with-init", "reviews-init", native},
		{"proxyless", "greeter", native},
		{"custom-labels", "custom-labels", Options{NativeSidecars: true, ServiceLabel: "app.kubernetes.io/name",
			VersionLabel: "app.kubernetes.io/version", ProxyImage: "registry.example.com/envoy:1.36.2",
			AgentImage: "registry.example.com/gitmesh:0.14.0", XDSAddress: "gitmesh.mesh.svc:15010"}},
		{"unknown-service", "unknown-service", native},
		{"unknown-version", "unknown-version", native},
		{"other-namespace", "other-namespace", native},
		{"no-labels", "no-labels", native},
		{"opted-out", "opted-out", native},
		{"wrong-account", "wrong-account", native},
		{"proxy-none", "unmeshed", native},
		{"capture-annotations", "reviews-probes", native},
		{"bad-annotation", "bad-annotation", native},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := readPod(t, c.in)
			res, err := Inject(pod, "", testMesh(), c.opts)
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatal(err)
			}
			g := goldenResult{Error: errString(err), Class: res.Class, Skipped: res.Skipped, Warnings: res.Warnings, Unmatched: res.Unmatched, Reason: res.Reason, Patch: res.Patch}
			out, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "out", c.name+".json"), append(out, '\n'))
			if (res.Patch == nil) != (res.Class == "") {
				t.Errorf("patch %v but class %q", res.Patch != nil, res.Class)
			}
			if res.Patch != nil {
				checkInjected(t, pod, res, c.opts)
			}
		})
	}
}

// checkInjected applies the patch and checks the pod it gives: the
// contract's containers in order, the node id, the volumes, and that a
// second pass changes nothing.
func checkInjected(t *testing.T, pod *corev1.Pod, res Result, o Options) {
	t.Helper()
	got := applyPatch(t, pod, res.Patch)
	if got.Annotations[InjectedAnnotation] != "true" {
		t.Errorf("annotation %s = %q", InjectedAnnotation, got.Annotations[InjectedAnnotation])
	}
	for k, v := range pod.Annotations {
		if got.Annotations[k] != v {
			t.Errorf("annotation %s lost", k)
		}
	}
	proxyless := strings.HasPrefix(res.Class, "proxyless/")
	var names []string
	for _, c := range got.Spec.InitContainers {
		names = append(names, c.Name)
	}
	names = append(names, "|")
	for _, c := range got.Spec.Containers {
		names = append(names, c.Name)
	}
	var want []string
	if !proxyless {
		want = append(want, CaptureContainer)
	}
	sidecars := []string{AgentContainer}
	if !proxyless {
		sidecars = append(sidecars, ProxyContainer)
	}
	if o.NativeSidecars {
		want = append(want, sidecars...)
	}
	for _, c := range pod.Spec.InitContainers {
		want = append(want, c.Name)
	}
	want = append(want, "|")
	if !o.NativeSidecars {
		want = append(want, sidecars...)
	}
	for _, c := range pod.Spec.Containers {
		want = append(want, c.Name)
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("containers %v, want %v", names, want)
	}
	agent := find(got, AgentContainer)
	if agent == nil {
		t.Fatal("no agent")
	}
	var nodeID string
	for _, e := range agent.Env {
		if e.Name == "NODE_ID" {
			nodeID = e.Value
		}
	}
	if nodeID != res.Class+"/$(POD_NAME)" {
		t.Errorf("NODE_ID %q, want %q", nodeID, res.Class+"/$(POD_NAME)")
	}
	if o.NativeSidecars && (agent.RestartPolicy == nil || *agent.RestartPolicy != corev1.ContainerRestartPolicyAlways) {
		t.Error("agent is not a native sidecar")
	}
	// Only the capture container may add capabilities or run as root.
	for _, c := range append(append([]corev1.Container(nil), got.Spec.InitContainers...), got.Spec.Containers...) {
		sc := c.SecurityContext
		if c.Name == CaptureContainer || sc == nil {
			continue
		}
		if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
			t.Errorf("%s adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
	}
	if e := find(got, ProxyContainer); e != nil && (e.ReadinessProbe == nil || e.ReadinessProbe.HTTPGet == nil || e.ReadinessProbe.HTTPGet.Port.IntValue() != 15021) {
		t.Error("envoy has no readiness probe on 15021")
	}
	again, err := Inject(got, "", testMesh(), o)
	if err != nil || again.Patch != nil {
		t.Errorf("second pass: patch %s, err %v; want none", again.Patch, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func find(p *corev1.Pod, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

func applyPatch(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	return &got
}

func TestInjectNoMesh(t *testing.T) {
	if _, err := Inject(readPod(t, "reviews"), "", nil, Options{}); err == nil {
		t.Fatal("no error without a mesh")
	}
	// A pod that names no service is admitted whatever the mesh.
	res, err := Inject(readPod(t, "no-labels"), "", nil, Options{})
	if err != nil || res.Patch != nil || len(res.Warnings) != 1 {
		t.Fatalf("got %+v, %v", res, err)
	}
}

// TestInjectDeterministic: the same pod gives the same bytes, so a
// retried admission and the golden files agree.
func TestInjectDeterministic(t *testing.T) {
	a, _ := Inject(readPod(t, "reviews-init"), "", testMesh(), Options{NativeSidecars: true})
	b, _ := Inject(readPod(t, "reviews-init"), "", testMesh(), Options{NativeSidecars: true})
	if !bytes.Equal(a.Patch, b.Patch) {
		t.Fatal("two injections of one pod differ")
	}
}
