package certsvc_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/internal/kubetest"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
)

// TestRootPublisher: the trust bundle appears as gitmesh-ca-root-cert in
// opted-in namespaces only, follows a bundle change (root rotation), comes
// back when deleted, and appears in a namespace as soon as it opts in.
func TestRootPublisher(t *testing.T) {
	c := kubetest.Shared(t)
	in, out := c.Namespace(t), c.Namespace(t)
	// A selector of this test's own, so namespaces of other tests are left alone.
	const label = "gitmesh-test/publish"
	optIn := func(ns string) { t.Helper(); c.LabelNamespace(t, ns, label, "enabled") }
	optIn(in)
	var bundle atomic.Pointer[string]
	first := "-----BEGIN CERTIFICATE-----\nroot one\n-----END CERTIFICATE-----\n"
	bundle.Store(&first)
	p := certsvc.NewRootPublisher(certsvc.PublisherOptions{Client: c.Client, NamespaceSelector: label + "=enabled",
		Bundle: func() []byte { return []byte(*bundle.Load()) }, Interval: 200 * time.Millisecond, Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	holds := func(ns, want string) func() bool {
		return func() bool {
			cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), certsvc.RootConfigMap, metav1.GetOptions{})
			return err == nil && cm.Data[certsvc.RootConfigMapKey] == want
		}
	}
	eventually(t, "the bundle in the opted-in namespace", holds(in, first))
	if _, err := c.Client.CoreV1().ConfigMaps(out).Get(context.Background(), certsvc.RootConfigMap, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a namespace that did not opt in got the ConfigMap (err %v)", err)
	}

	second := first + "-----BEGIN CERTIFICATE-----\nroot two\n-----END CERTIFICATE-----\n"
	bundle.Store(&second)
	eventually(t, "the rotated bundle", holds(in, second))

	if err := c.Client.CoreV1().ConfigMaps(in).Delete(context.Background(), certsvc.RootConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted ConfigMap to come back", holds(in, second))

	optIn(out)
	eventually(t, "the bundle in a namespace that opted in later", holds(out, second))
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
