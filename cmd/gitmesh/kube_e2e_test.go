package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/api"
	"github.com/gitmesh/gitmesh/reconciler/drift"
)

// kubeMesh: greeter's endpoints come from Kubernetes, its versions told
// apart by the pods' version label.
func kubeMesh(ns string) string {
	return fmt.Sprintf(`package mesh

mesh: {name: "kube-e2e", mtls: "DISABLE"}

services: greeter: {
	namespace: %[1]q
	proxy:     "proxyless"
	discovery: "kubernetes"
	ports: [{name: "grpc", number: 50051, protocol: "grpc"}]
	versions: {
		v1: labels: version: "v1"
		v2: labels: version: "v2"
	}
}

services: client: {
	namespace: %[1]q
	proxy:     "proxyless"
	ports: [{name: "grpc", number: 50052, protocol: "grpc"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: ["greeter"]
}
`, ns)
}

// hostIP is this machine's first non-loopback IPv4 address: Kubernetes
// refuses loopback addresses in EndpointSlices, so the test backends
// listen on it.
func hostIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address: EndpointSlices cannot point at loopback backends")
	return ""
}

// kubeWorkload creates a pod (it stays Pending: only the API server runs)
// and the EndpointSlice a controller would write for it.
func kubeWorkload(t *testing.T, c kubernetes.Interface, ns, name, version, ip string, port int) {
	t.Helper()
	ctx := context.Background()
	_, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "greeter", "version": version}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "greeter", Image: "greeter:" + version}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	portName, p := "grpc", int32(port)
	ready := true
	_, err = c.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "greeter"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &p}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesEndpoints is issue 6's discovery acceptance test against a
// real kube-apiserver (internal/kubetest; skipped when its binaries are
// missing, unless GITMESH_REQUIRE_KUBE=1 as in CI): serve --kubeconfig
// feeds EndpointSlices to a real grpc-go xds:/// client. A new backend
// starts receiving traffic, a removed one stops, only EDS is pushed, and
// with the API server down the last known endpoints keep serving while
// status and drift say so.
func TestKubernetesEndpoints(t *testing.T) {
	cluster := kubetest.Shared(t)
	ns := cluster.Namespace(t)
	c := cluster.Client
	_, err := c.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "greeter"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 50051, TargetPort: intstr.FromInt32(50051)}},
			Selector: map[string]string{"app": "greeter"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ip := hostIP(t)
	a := backendAt(t, ip, "v1")
	b := backendAt(t, ip, "v2")
	kubeWorkload(t, c, ns, "greeter-v1-a", "v1", ip, a)

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(kubeMesh(ns)), 0o644)
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	cfg.drift = driftFlags{cluster: "kube", kubernetes: "auto", kubeconfig: cluster.Kubeconfig, kubeNamespaces: []string{ns},
		interval: 200 * time.Millisecond, staleAfter: 5 * time.Second, expiryWarning: drift.DefaultExpiryWarning, leaderElect: "auto"}
	m, _, base := serveReady(t, cfg, 30*time.Second)

	client := xdsClient(t, m.XDSAddr(), "proxyless/"+ns+"/client/v1/pod-1", "greeter:50051")
	waitFor(t, 10*time.Second, "the first RPC to the v1 pod", func() bool { v1, _, _ := split(t, client, 1); return v1 == 1 })
	if v1, v2, f := split(t, client, 50); v1 != 50 {
		t.Fatalf("one v1 pod: v1=%d v2=%d failed=%d, want all on v1", v1, v2, f)
	}

	// A v2 pod appears: it starts receiving traffic, with no new revision
	// and no push but EDS.
	pushes := func() map[string]float64 {
		out := map[string]float64{}
		for _, typ := range []string{"Listener", "RouteConfiguration", "Cluster", "ClusterLoadAssignment"} {
			out[typ] = metricSum(t, base, "gitmesh_xds_pushes_total", `type="`+typ+`"`)
		}
		return out
	}
	before := pushes()
	kubeWorkload(t, c, ns, "greeter-v2-b", "v2", ip, b)
	took := waitFor(t, 10*time.Second, "the new v2 pod to receive traffic", func() bool { _, v2, _ := split(t, client, 10); return v2 > 0 })
	t.Logf("new endpoint → traffic in %v", took)
	after := pushes()
	for typ, n := range after {
		if typ != "ClusterLoadAssignment" && n != before[typ] {
			t.Errorf("endpoint change pushed %v %s responses; only EDS should be pushed", n-before[typ], typ)
		}
	}
	if after["ClusterLoadAssignment"] <= before["ClusterLoadAssignment"] {
		t.Errorf("no EDS push counted for the new endpoint")
	}

	// The v1 pod goes away: it stops receiving traffic.
	if err := c.DiscoveryV1().EndpointSlices(ns).Delete(context.Background(), "greeter-v1-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the removed v1 pod to stop receiving traffic", func() bool {
		v1, _, _ := split(t, client, 10)
		return v1 == 0
	})
	if v1, v2, f := split(t, client, 50); v2 != 50 {
		t.Fatalf("after removing v1: v1=%d v2=%d failed=%d, want all on v2", v1, v2, f)
	}

	// Drift: version v1 has no endpoints now (a warning), nothing else.
	var rep api.DriftResponse
	waitFor(t, 10*time.Second, "a GM2005 for greeter v1", func() bool {
		getJSONT(t, base+"/api/v1/drift", &rep)
		return rep.Report != nil && hasCode(rep.Report, drift.CodeNoEndpoints)
	})

	// Kubernetes has a Service Git does not declare, and greeter's port
	// number disagrees with Git's.
	_, err = c.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.CoreV1().Services(ns).Get(context.Background(), "greeter", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port = 50052
	if _, err := c.CoreV1().Services(ns).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "GM2006 and GM2007 findings", func() bool {
		getJSONT(t, base+"/api/v1/drift", &rep)
		return hasCode(rep.Report, drift.CodeUndeclaredService) && hasCode(rep.Report, drift.CodePortMismatch)
	})
	for _, f := range rep.Findings {
		if f.Code == drift.CodePortMismatch && f.Message != "port grpc of service greeter is 50051 in Git but 50052 in Kubernetes" {
			t.Errorf("port finding: %q", f.Message)
		}
	}

	// Kubernetes goes away: the last known endpoints keep serving, and the
	// status and drift report say so.
	cluster.StopAPIServer()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			cluster.RestartAPIServer() // leave the shared cluster running for other tests
		}
	})
	waitFor(t, 20*time.Second, "status to report Kubernetes unreachable", func() bool {
		var st struct {
			Kubernetes struct{ Reachable bool } `json:"kubernetes"`
		}
		getJSONT(t, base+"/api/v1/status", &st)
		return !st.Kubernetes.Reachable
	})
	waitFor(t, 10*time.Second, "a GM2011 drift finding", func() bool {
		getJSONT(t, base+"/api/v1/drift", &rep)
		return hasCode(rep.Report, drift.CodeKubeUnreachable)
	})
	if v1, v2, f := split(t, client, 50); v2 != 50 {
		t.Fatalf("with Kubernetes down: v1=%d v2=%d failed=%d, want the last known endpoints (all v2)", v1, v2, f)
	}
	restarted = true
	if err := cluster.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "Kubernetes reachable again", func() bool {
		getJSONT(t, base+"/api/v1/drift", &rep)
		return !hasCode(rep.Report, drift.CodeKubeUnreachable)
	})
}

// metricSum adds every sample of a counter whose labels mention substr.
func metricSum(t *testing.T, base, name, substr string) float64 {
	t.Helper()
	_, body := httpGet(t, base+"/metrics")
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, substr) {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}
