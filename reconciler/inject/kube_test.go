package inject

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/schema/model"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// warnings collects the warnings the API server returns to a client.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// serveWebhook serves Handler over TLS on 127.0.0.1 with a serving
// certificate from a fresh gitmesh CA, and returns its URL and the CA.
func serveWebhook(t *testing.T, mesh *model.Mesh, opts Options) (string, *ca.CA) {
	t.Helper()
	authority, err := ca.New(ca.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(HandlerOptions{Mesh: func() *model.Mesh { return mesh }, Options: opts}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return authority.ServingCert(nil)
		},
	}}
	go func() { _ = srv.ServeTLS(lis, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return "https://" + lis.Addr().String() + Path, authority
}

// TestWebhookAgainstAPIServer registers the webhook in a real API server
// and checks what the server stores for the pods the issue lists.
func TestWebhookAgainstAPIServer(t *testing.T) {
	c := kubetest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	native, err := NativeSidecarsSupported(c.Client)
	if err != nil {
		t.Fatal(err)
	}
	if !native {
		t.Fatal("the test API server should support native sidecars")
	}
	in, out := c.Namespace(t), c.Namespace(t)
	c.LabelNamespace(t, in, NamespaceLabel, Enabled)
	mesh := &model.Mesh{Services: map[string]*model.Service{
		"reviews": {Name: "reviews", Namespace: in, ServiceAccount: "reviews", Proxy: model.ProxySidecar,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}, "v2": {Name: "v2"}}},
		"greeter": {Name: "greeter", Namespace: in, ServiceAccount: "greeter", Proxy: model.ProxyProxyless,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
		// A service in a namespace that has not opted in: only a pod that
		// opts in by label is injected there.
		"ratings": {Name: "ratings", Namespace: out, ServiceAccount: "ratings", Proxy: model.ProxySidecar,
			Versions: map[string]*model.Version{"v1": {Name: "v1"}}},
	}}
	url, authority := serveWebhook(t, mesh, Options{NativeSidecars: native})

	keeper := &Keeper{Client: c.Client, Config: ConfigOptions{URL: url}, Bundle: authority.TrustBundle}
	if err := keeper.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), WebhookConfigName, metav1.DeleteOptions{})
	})
	warn := &warnings{}
	cfg := rest.CopyConfig(c.Config)
	cfg.WarningHandler = warn
	client := kubernetes.NewForConfigOrDie(cfg)
	// The API server may take a moment to load the new configuration.
	waitInjected(t, ctx, client, in)
	warn.take()

	t.Run("injected", func(t *testing.T) {
		p := create(t, ctx, client, in, newPod("reviews-v2-", map[string]string{"app": "reviews", "version": "v2"}, nil))
		checkStoredSidecar(t, p, "sidecar/"+in+"/reviews/v2")
		if w := warn.take(); len(w) != 0 {
			t.Errorf("warnings %q", w)
		}
	})
	t.Run("proxyless", func(t *testing.T) {
		p := create(t, ctx, client, in, newPod("greeter-v1-", map[string]string{"app": "greeter", "version": "v1"}, nil))
		if got := names(p.Spec.InitContainers); !slices.Equal(got, []string{AgentContainer}) {
			t.Errorf("init containers %v, want only the agent", got)
		}
		if got := names(p.Spec.Containers); !slices.Equal(got, []string{"app"}) {
			t.Errorf("containers %v", got)
		}
		if !hasEnv(p.Spec.Containers[0], "GRPC_XDS_BOOTSTRAP", GRPCBootstrap) {
			t.Error("app has no GRPC_XDS_BOOTSTRAP")
		}
		if !hasEnv(p.Spec.InitContainers[0], "NODE_ID", "proxyless/"+in+"/greeter/v1/$(POD_NAME)") {
			t.Error("agent has the wrong NODE_ID")
		}
	})
	t.Run("other namespace untouched", func(t *testing.T) {
		p := create(t, ctx, client, out, newPod("ratings-v1-", map[string]string{"app": "ratings", "version": "v1"}, nil))
		untouched(t, p)
	})
	t.Run("pod label opts in", func(t *testing.T) {
		p := create(t, ctx, client, out, newPod("ratings-v1-", map[string]string{"app": "ratings", "version": "v1", NamespaceLabel: Enabled}, nil))
		checkStoredSidecar(t, p, "sidecar/"+out+"/ratings/v1")
	})
	t.Run("opted out by annotation", func(t *testing.T) {
		p := create(t, ctx, client, in, newPod("reviews-v1-", map[string]string{"app": "reviews", "version": "v1"},
			map[string]string{OptOutAnnotation: "false"}))
		untouched(t, p)
	})
	t.Run("opted out by label", func(t *testing.T) {
		p := create(t, ctx, client, in, newPod("reviews-v1-", map[string]string{"app": "reviews", "version": "v1", NamespaceLabel: "false"}, nil))
		untouched(t, p)
	})
	t.Run("unmatched pod admitted with a warning", func(t *testing.T) {
		p := create(t, ctx, client, in, newPod("mystery-", map[string]string{"app": "mystery", "version": "v1"}, nil))
		untouched(t, p)
		w := warn.take()
		if len(w) != 1 || !strings.Contains(w[0], `label app="mystery" names no service of the mesh`) {
			t.Errorf("warnings %q, want one naming the label", w)
		}
	})
	t.Run("malformed capture annotation refused", func(t *testing.T) {
		p := newPod("reviews-v1-", map[string]string{"app": "reviews", "version": "v1"},
			map[string]string{ExcludeInboundPortsAnnotation: "http"})
		_, err := client.CoreV1().Pods(in).Create(ctx, p, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), `annotation gitmesh.io/exclude-inbound-ports: port "http"`) {
			t.Fatalf("create: %v, want the annotation refused", err)
		}
	})
	t.Run("same spec twice injects once", func(t *testing.T) {
		spec := newPod("reviews-v1-", map[string]string{"app": "reviews", "version": "v1"}, nil)
		a := create(t, ctx, client, in, spec.DeepCopy())
		b := create(t, ctx, client, in, spec.DeepCopy())
		checkStoredSidecar(t, a, "sidecar/"+in+"/reviews/v1")
		checkStoredSidecar(t, b, "sidecar/"+in+"/reviews/v1")
		// An injected pod's spec sent again (a copied manifest) is
		// admitted as it is: one agent, one Envoy.
		again := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "reviews-v1-", Labels: a.Labels, Annotations: a.Annotations}, Spec: a.Spec}
		again.Spec.NodeName = ""
		c2 := create(t, ctx, client, in, again)
		checkStoredSidecar(t, c2, "sidecar/"+in+"/reviews/v1")
	})
	t.Run("keeper restores the caBundle", func(t *testing.T) {
		api := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
		cur, err := api.Get(ctx, WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before := cur.ResourceVersion
		if err := keeper.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if now, _ := api.Get(ctx, WebhookConfigName, metav1.GetOptions{}); now.ResourceVersion != before {
			t.Error("a sync with nothing to change wrote the object")
		}
		for i := range cur.Webhooks {
			cur.Webhooks[i].ClientConfig.CABundle = nil
		}
		if _, err := api.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := keeper.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := api.Get(ctx, WebhookConfigName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range got.Webhooks {
			if string(h.ClientConfig.CABundle) != string(authority.TrustBundle()) {
				t.Errorf("webhook %s: caBundle not restored", h.Name)
			}
		}
	})
}

func newPod(generateName string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: generateName, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{
			ServiceAccountName: labels["app"],
			Containers:         []corev1.Container{{Name: "app", Image: "example.com/app:1"}},
		},
	}
}

func create(t *testing.T, ctx context.Context, client kubernetes.Interface, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	got, err := client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	// Read it back: what matters is what the server stored.
	stored, err := client.CoreV1().Pods(ns).Get(ctx, got.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

// waitInjected creates pods until one comes back injected: the API
// server's webhook configuration cache lags the object by a moment.
func waitInjected(t *testing.T, ctx context.Context, client kubernetes.Interface, ns string) {
	t.Helper()
	for {
		p := create(t, ctx, client, ns, newPod("probe-", map[string]string{"app": "reviews", "version": "v1"}, nil))
		if p.Annotations[InjectedAnnotation] == "true" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the API server never called the webhook")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkStoredSidecar(t *testing.T, p *corev1.Pod, class string) {
	t.Helper()
	if got, want := names(p.Spec.InitContainers), []string{CaptureContainer, AgentContainer, ProxyContainer}; !slices.Equal(got, want) {
		t.Errorf("%s: init containers %v, want %v", p.Name, got, want)
	}
	if got := names(p.Spec.Containers); !slices.Equal(got, []string{"app"}) {
		t.Errorf("%s: containers %v, want the application only", p.Name, got)
	}
	if p.Annotations[InjectedAnnotation] != "true" || p.Annotations[ClassAnnotation] != class {
		t.Errorf("%s: annotations %v", p.Name, p.Annotations)
	}
	for _, c := range p.Spec.InitContainers[1:] {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: %s is not a native sidecar", p.Name, c.Name)
		}
	}
	if len(p.Spec.InitContainers) > 1 && !hasEnv(p.Spec.InitContainers[1], "NODE_ID", class+"/$(POD_NAME)") {
		t.Errorf("%s: agent's NODE_ID is not %q", p.Name, class+"/$(POD_NAME)")
	}
	if got := volumeNames(p); !slices.Contains(got, RunVolume) || !slices.Contains(got, TokenVolume) {
		t.Errorf("%s: volumes %v", p.Name, got)
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == TokenVolume {
			s := v.Projected.Sources[0].ServiceAccountToken
			if s.Audience != TokenAudience || *s.ExpirationSeconds != TokenSeconds {
				t.Errorf("%s: token projection %+v", p.Name, s)
			}
		}
	}
}

func untouched(t *testing.T, p *corev1.Pod) {
	t.Helper()
	if len(p.Spec.InitContainers) != 0 || len(p.Spec.Containers) != 1 || p.Annotations[InjectedAnnotation] != "" {
		t.Errorf("%s: injected: init %v, containers %v, annotations %v", p.Name, names(p.Spec.InitContainers), names(p.Spec.Containers), p.Annotations)
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func volumeNames(p *corev1.Pod) []string {
	var out []string
	for _, v := range p.Spec.Volumes {
		out = append(out, v.Name)
	}
	return out
}

func hasEnv(c corev1.Container, name, value string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.Value == value {
			return true
		}
	}
	return false
}
