// These tests run a real etcd and kube-apiserver (see package doc); they
// skip when the binaries are missing unless GITMESH_REQUIRE_KUBE=1.
package kubetest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func TestMain(m *testing.M) { Main(m) }

// TestSharedCluster checks what every Kubernetes test relies on: fresh
// namespaces, a kubeconfig file that works, and data that survives an API
// server restart on the same port.
func TestSharedCluster(t *testing.T) {
	c := Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ns1, ns2 := c.Namespace(t), c.Namespace(t)
	if ns1 == ns2 {
		t.Fatalf("Namespace returned %q twice", ns1)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := c.Client.CoreV1().ConfigMaps(ns1).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatalf("load kubeconfig: %v", err)
	}
	viaFile, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := viaFile.CoreV1().ConfigMaps(ns1).Get(ctx, "kept", metav1.GetOptions{}); err != nil {
		t.Fatalf("get through kubeconfig: %v", err)
	}

	c.StopAPIServer()
	if _, err := c.Client.CoreV1().ConfigMaps(ns1).Get(ctx, "kept", metav1.GetOptions{}); err == nil {
		t.Fatal("get succeeded with the API server stopped")
	}
	start := time.Now()
	if err := c.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server restart took %s", time.Since(start).Round(time.Millisecond))
	got, err := c.Client.CoreV1().ConfigMaps(ns1).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Fatalf("data after restart = %v, want k=v", got.Data)
	}
}
