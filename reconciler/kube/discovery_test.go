// The tests in this file and in leader_test.go run against a real etcd and
// kube-apiserver started by internal/kubetest (one per test binary, a fresh
// namespace per test); they skip when those binaries are missing unless
// GITMESH_REQUIRE_KUBE=1. They must not run in parallel: one of them stops
// and restarts the shared API server.
package kube

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/schema/model"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// fixture creates objects in ns and fails t on error.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	client kubernetes.Interface
	ns     string
}

func (f fixture) service(name string, ports ...corev1.ServicePort) {
	f.t.Helper()
	_, err := f.client.CoreV1().Services(f.ns).Create(f.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: ports},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f fixture) pod(name string, labels map[string]string) {
	f.t.Helper()
	_, err := f.client.CoreV1().Pods(f.ns).Create(f.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f fixture) slice(name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) {
	f.t.Helper()
	s := slice(name, svc, ports, eps...)
	s.Namespace = f.ns
	if _, err := f.client.DiscoveryV1().EndpointSlices(f.ns).Create(f.ctx, s, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

// start runs a Discovery over ns until the test ends and waits for sync.
func start(t *testing.T, client kubernetes.Interface, ns string) *Discovery {
	t.Helper()
	d := New(client, Options{Namespaces: []string{ns}, ProbeInterval: 200 * time.Millisecond, Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	if !d.WaitForSync(sctx) {
		t.Fatal("discovery did not sync within 20s")
	}
	return d
}

// testLogger shows discovery's logs with -v only.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// reviewsMesh is a mesh with "reviews" in ns, two versions by label.
func reviewsMesh(ns string) *model.Mesh {
	m := meshOf([]model.Port{{Name: "http", Number: 9080, Protocol: model.ProtocolHTTP}}, byVersion)
	m.Services["reviews"].Namespace = ns
	return m
}

func TestDiscovery(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := fixture{t: t, ctx: ctx, client: c.Client, ns: c.Namespace(t)}

	f.service("reviews", corev1.ServicePort{Name: "http", Port: 9080, TargetPort: intstr.FromString("http")})
	f.service("legacy", corev1.ServicePort{Name: "tcp", Port: 7000, TargetPort: intstr.FromInt32(7001), Protocol: corev1.ProtocolTCP})
	f.pod("reviews-v1", map[string]string{"app": "reviews", "version": "v1"})
	f.pod("reviews-v2", map[string]string{"app": "reviews", "version": "v2"})
	d := start(t, c.Client, f.ns)
	f.slice("reviews-a", "reviews", []discoveryv1.EndpointPort{port("http", 9081)},
		ep("reviews-v1", ptr(true), "10.1.0.1"),
		ep("reviews-v2", nil, "10.1.0.2"),
		ep("reviews-v1", ptr(false), "10.1.0.3"))

	m := reviewsMesh(f.ns)
	want := map[string][]model.Endpoint{
		"reviews/v1": {{Address: "10.1.0.1", Ports: map[string]int{"http": 9081}}},
		"reviews/v2": {{Address: "10.1.0.2", Ports: map[string]int{"http": 9081}}},
	}
	took := eventually(t, 10*time.Second, "endpoints mapped", func() bool {
		return cmp.Equal(want, d.Endpoints(m))
	})
	t.Logf("slice created → endpoints mapped: %s", took.Round(time.Millisecond))

	svcs := d.Services()
	wantSvcs := []Service{
		{Namespace: f.ns, Name: "legacy", Ports: []ServicePort{{Name: "tcp", Port: 7000, TargetPort: "7001", Protocol: "TCP"}}},
		{Namespace: f.ns, Name: "reviews", Ports: []ServicePort{{Name: "http", Port: 9080, TargetPort: "http", Protocol: "TCP"}}, ReadyEndpoints: 2},
	}
	if diff := cmp.Diff(wantSvcs, svcs); diff != "" {
		t.Errorf("Services (-want +got):\n%s", diff)
	}
	// The API server allocated reviews a ClusterIP: it is the service's
	// address (its VIP), as read back from the Service.
	created, err := c.Client.CoreV1().Services(f.ns).Get(ctx, "reviews", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ips := created.Spec.ClusterIPs; len(ips) == 0 {
		t.Errorf("the API server allocated no ClusterIP to reviews")
	} else if diff := cmp.Diff(map[string][]string{"reviews": ips}, d.Addresses(m)); diff != "" {
		t.Errorf("Addresses (-want +got):\n%s", diff)
	}
	if h := d.Health(); !h.Synced || !d.Synced() || !h.Reachable || h.Error != "" || h.LastEvent.IsZero() {
		t.Errorf("Health = %+v, want synced, reachable, no error, an event", h)
	}

	// Relabelling a Pod moves its endpoint to the other version.
	drain(d.Changed())
	pod, err := c.Client.CoreV1().Pods(f.ns).Get(ctx, "reviews-v2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Labels["version"] = "v1"
	if _, err := c.Client.CoreV1().Pods(f.ns).Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want = map[string][]model.Endpoint{
		"reviews/v1": {{Address: "10.1.0.1", Ports: map[string]int{"http": 9081}}, {Address: "10.1.0.2", Ports: map[string]int{"http": 9081}}},
		"reviews/v2": {},
	}
	eventually(t, 10*time.Second, "endpoint moved to v1", func() bool { return cmp.Equal(want, d.Endpoints(m)) })

	// Deleting the slice empties both versions and signals Changed.
	drain(d.Changed())
	if err := c.Client.DiscoveryV1().EndpointSlices(f.ns).Delete(ctx, "reviews-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("Changed did not fire after a slice was deleted")
	}
	eventually(t, 10*time.Second, "endpoints gone", func() bool {
		return cmp.Equal(map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}}, d.Endpoints(m))
	})
}

// TestDiscoveryUnreachable stops the API server under a running Discovery.
func TestDiscoveryUnreachable(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := fixture{t: t, ctx: ctx, client: c.Client, ns: c.Namespace(t)}
	f.service("reviews", corev1.ServicePort{Name: "http", Port: 9080})
	f.pod("reviews-v1", map[string]string{"version": "v1"})
	f.slice("reviews-a", "reviews", []discoveryv1.EndpointPort{port("http", 9080)}, ep("reviews-v1", nil, "10.2.0.1"))
	d := start(t, c.Client, f.ns)
	m := reviewsMesh(f.ns)
	want := map[string][]model.Endpoint{"reviews/v1": {{Address: "10.2.0.1"}}, "reviews/v2": {}}
	eventually(t, 10*time.Second, "endpoints mapped", func() bool { return cmp.Equal(want, d.Endpoints(m)) })

	c.StopAPIServer()
	took := eventually(t, 5*time.Second, "unreachable reported", func() bool { return !d.Health().Reachable })
	h := d.Health()
	t.Logf("API server stopped → unreachable in %s: %q", took.Round(time.Millisecond), h.Error)
	if h.Error == "" || h.UnreachableSince.IsZero() {
		t.Errorf("Health = %+v, want an error and UnreachableSince", h)
	}
	if strings.Contains(h.Error, c.Config.BearerToken) {
		t.Errorf("Health.Error contains the bearer token: %q", h.Error)
	}
	if diff := cmp.Diff(want, d.Endpoints(m)); diff != "" {
		t.Errorf("Endpoints while unreachable (-want +got):\n%s", diff)
	}

	if err := c.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	took = eventually(t, 10*time.Second, "reachable again", func() bool { return d.Health().Reachable })
	if h := d.Health(); h.Error != "" || !h.UnreachableSince.IsZero() {
		t.Errorf("Health after restart = %+v, want no error", h)
	}
	t.Logf("API server restarted → reachable in %s", took.Round(time.Millisecond))

	// The informers resume: a change made after the restart arrives.
	f.pod("reviews-v2", map[string]string{"version": "v2"})
	f.slice("reviews-b", "reviews", []discoveryv1.EndpointPort{port("http", 9080)}, ep("reviews-v2", nil, "10.2.0.2"))
	want["reviews/v2"] = []model.Endpoint{{Address: "10.2.0.2"}}
	took = eventually(t, 20*time.Second, "change after restart seen", func() bool { return cmp.Equal(want, d.Endpoints(m)) })
	t.Logf("change after restart seen in %s", took.Round(time.Millisecond))
}

// TestDiscoveryForbidden runs discovery as a service account without RBAC
// rights: the API server is reachable but the watches fail, and Health
// says why until a Role grants the rights.
func TestDiscoveryForbidden(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := c.Namespace(t)
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "gitmesh"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.BearerToken = tok.Status.Token
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	d := New(client, Options{Namespaces: []string{ns}, ProbeInterval: 200 * time.Millisecond, Logger: testLogger()})
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(rctx); close(done) }()
	defer func() { rcancel(); <-done }()
	eventually(t, 10*time.Second, "forbidden reported", func() bool {
		return strings.Contains(d.Health().Error, "forbidden")
	})
	if h := d.Health(); !h.Reachable || h.Synced {
		t.Errorf("Health = %+v, want reachable, not synced", h)
	}
	t.Logf("Health.Error = %q", d.Health().Error)

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "gitmesh-discovery"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
		},
	}
	if _, err := c.Client.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "gitmesh-discovery"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: ns}},
	}
	if _, err := c.Client.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	start := time.Now()
	if !d.WaitForSync(sctx) {
		t.Fatal("no sync within 30s of granting the rights")
	}
	took := eventually(t, 5*time.Second, "error cleared", func() bool { return d.Health().Error == "" })
	t.Logf("rights granted → synced in %s, error cleared %s later", time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))
}

func TestRESTConfig(t *testing.T) {
	c := kubetest.Shared(t)
	cfg, err := RESTConfig(c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != c.Config.Host || cfg.UserAgent != "gitmesh" {
		t.Errorf("RESTConfig = host %q agent %q, want %q, gitmesh", cfg.Host, cfg.UserAgent, c.Config.Host)
	}
	missing := t.TempDir() + "/nope.yaml"
	if _, err := RESTConfig(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("RESTConfig(missing) error = %v, want it to name %s", err, missing)
	}

	// Outside a cluster, "" falls back to $KUBECONFIG.
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", c.Kubeconfig)
	if cfg, err := RESTConfig(""); err != nil || cfg.Host != c.Config.Host {
		t.Errorf("RESTConfig(\"\") with $KUBECONFIG = %v, %v; want host %q", cfg, err, c.Config.Host)
	}
	t.Setenv("KUBECONFIG", missing)
	if _, err := RESTConfig(""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("RESTConfig(\"\") with $KUBECONFIG missing: error = %v, want it to name %s", err, missing)
	}
}

// drain empties a coalesced signal channel.
func drain(c <-chan struct{}) {
	select {
	case <-c:
	default:
	}
}
