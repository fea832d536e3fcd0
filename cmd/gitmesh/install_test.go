package main

import (
	"context"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/internal/kubetest"
)

// TestInstallDryRun: --dry-run -o yaml prints what deploy/kustomize holds,
// byte for byte (both come from internal/install), and needs no cluster.
func TestInstallDryRun(t *testing.T) {
	code, out, errOut := runCLI(t, "install", "--dry-run", "-o", "yaml", "--kubeconfig", "/nonexistent")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want, err := os.ReadFile("../../deploy/kustomize/gitmesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(string(want), "\n") // the generated-file header
	if out != body {
		t.Errorf("install --dry-run -o yaml differs from deploy/kustomize/gitmesh.yaml")
	}
}

// TestInstallKube: gitmesh install applied twice changes nothing the
// second time; uninstall removes what install applied.
func TestInstallKube(t *testing.T) {
	c := kubetest.Start(t)
	code, first, errOut := runCLI(t, "install", "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, errOut)
	}
	if n := strings.Count(first, " applied "); n != 10 {
		t.Errorf("install applied %d objects, want 10:\n%s", n, first)
	}
	code, second, errOut := runCLI(t, "install", "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("second install: exit %d: %s", code, errOut)
	}
	if second != first {
		t.Errorf("second install changed resourceVersions:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	code, out, errOut := runCLI(t, "uninstall", "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("uninstall: exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, " deleted\n"); n != 10 {
		t.Errorf("uninstall deleted %d objects, want 10:\n%s", n, out)
	}
	ctx := context.Background()
	if _, err := c.Client.AppsV1().Deployments("gitmesh-system").Get(ctx, "gitmesh", metav1.GetOptions{}); err == nil {
		t.Error("the Deployment is still there after uninstall")
	}
	if _, err := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "gitmesh-sidecar-injector", metav1.GetOptions{}); err == nil {
		t.Error("the webhook configuration is still there after uninstall")
	}
	if _, err := c.Client.RbacV1().ClusterRoles().Get(ctx, "gitmesh", metav1.GetOptions{}); err == nil {
		t.Error("the ClusterRole is still there after uninstall")
	}
}
