package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
	"github.com/gitmesh/gitmesh/reconciler/drift"
	"github.com/gitmesh/gitmesh/reconciler/inject"
)

type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnLog) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

// TestServeInjectsSidecars runs serve with its webhook port against the
// real API server: serve creates its MutatingWebhookConfiguration with its
// CA's bundle, and a pod created in an opted-in namespace is stored with
// the sidecar that the served mesh says it needs.
func TestServeInjectsSidecars(t *testing.T) {
	cluster := kubetest.Shared(t)
	ns := cluster.Namespace(t)
	c := cluster.Client
	cluster.LabelNamespace(t, ns, inject.NamespaceLabel, inject.Enabled)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte(fmt.Sprintf(`package mesh

mesh: {name: "inject-e2e", mtls: "DISABLE"}

services: web: {
	namespace:      %q
	serviceAccount: "web"
	ports: [{name: "http", number: 8080}]
	versions: v1: endpoints: [{address: "10.0.0.9"}]
}
`, ns)), 0o644)

	// The API server needs the webhook's URL before serve binds, so take
	// a free port first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	const config = "gitmesh-e2e-sidecar-injector"
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	cfg.drift = driftFlags{cluster: "kube", kubernetes: "auto", kubeconfig: cluster.Kubeconfig, kubeNamespaces: []string{ns},
		interval: 200 * time.Millisecond, staleAfter: 5 * time.Second, expiryWarning: drift.DefaultExpiryWarning, leaderElect: "off"}
	cfg.inject = injectFlags{addr: addr, url: "https://" + addr + inject.Path, config: config, native: "auto"}
	logs := &syncLog{}
	t.Cleanup(func() {
		_ = c.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), config, metav1.DeleteOptions{})
		if t.Failed() {
			t.Logf("gitmesh logs:\n%s", logs.String())
		}
	})
	m, _ := startServe(t, cfg, logs)
	base := "http://" + m.HTTPAddr()
	waitFor(t, 30*time.Second, "readyz", func() bool { code, _ := httpGet(t, base+"/readyz"); return code == 200 })
	waitFor(t, 30*time.Second, "the webhook configuration", func() bool {
		wc, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), config, metav1.GetOptions{})
		return err == nil && len(wc.Webhooks) > 0 && string(wc.Webhooks[0].ClientConfig.CABundle) == string(m.ca.TrustBundle())
	})

	warn := &warnLog{}
	rc := rest.CopyConfig(cluster.Config)
	rc.WarningHandler = warn
	client := kubernetes.NewForConfigOrDie(rc)
	pod := func(app string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: app + "-", Labels: map[string]string{"app": app, "version": "v1"}},
			Spec:       corev1.PodSpec{ServiceAccountName: app, Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
		}
	}
	var stored *corev1.Pod
	// The API server picks the new configuration up within a moment.
	waitFor(t, 30*time.Second, "an injected pod", func() bool {
		p, err := client.CoreV1().Pods(ns).Create(context.Background(), pod("web"), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stored = p
		return p.Annotations[inject.InjectedAnnotation] == "true"
	})
	var inits []string
	for _, ic := range stored.Spec.InitContainers {
		inits = append(inits, ic.Name)
	}
	if want := []string{inject.CaptureContainer, inject.AgentContainer, inject.ProxyContainer}; !slices.Equal(inits, want) {
		t.Errorf("init containers %v, want %v", inits, want)
	}
	if got := stored.Annotations[inject.ClassAnnotation]; got != "sidecar/"+ns+"/web/v1" {
		t.Errorf("class %q", got)
	}
	warn.mu.Lock()
	warn.msgs = nil
	warn.mu.Unlock()
	p, err := client.CoreV1().Pods(ns).Create(context.Background(), pod("stranger"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.InitContainers) != 0 {
		t.Errorf("unmatched pod injected: %v", p.Spec.InitContainers)
	}
	warn.mu.Lock()
	if len(warn.msgs) != 1 || !strings.Contains(warn.msgs[0], `label app="stranger"`) {
		t.Errorf("warnings %q", warn.msgs)
	}
	warn.mu.Unlock()
	// ... and the drift report names it.
	obj := "pod/" + ns + "/stranger-*"
	waitFor(t, 10*time.Second, "GM2012 in the drift report", func() bool {
		_, body := httpGet(t, base+"/api/v1/drift?format=yaml")
		return strings.Contains(body, "GM2012") && strings.Contains(body, obj)
	})
}
