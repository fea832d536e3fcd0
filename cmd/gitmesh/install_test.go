package main

import (
	"context"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/internal/install"
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
	if n := strings.Count(first, " applied "); n != 11 {
		t.Errorf("install applied %d objects, want 11:\n%s", n, first)
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
	if n := strings.Count(out, " deleted\n"); n != 11 {
		t.Errorf("uninstall deleted %d objects, want 11:\n%s", n, out)
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

// TestInstallEnvIsServeFlags: every GITMESH_* variable the Deployment sets
// names a flag of serve, and the values it sets pass serve's checks, so a
// renamed flag cannot leave the manifests configuring nothing.
func TestInstallEnvIsServeFlags(t *testing.T) {
	var dep *appsv1.Deployment
	for _, o := range install.Objects(install.Defaults()) {
		if d, ok := o.(*appsv1.Deployment); ok {
			dep = d
		}
	}
	cmd := newServeCmd(&globalFlags{})
	values := map[string]string{}
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		name, ok := strings.CutPrefix(e.Name, envPrefix)
		if !ok {
			continue
		}
		flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if cmd.Flags().Lookup(flag) == nil && cmd.InheritedFlags().Lookup(flag) == nil && flag != "log-format" {
			t.Errorf("the Deployment sets %s, but serve has no --%s", e.Name, flag)
		}
		if e.ValueFrom == nil {
			values[e.Name] = e.Value
		}
	}
	if err := applyEnv(cmd.Flags(), func(k string) (string, bool) { v, ok := values[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if err := checkFlags(cmd.Flags()); err != nil {
		t.Errorf("serve refuses the Deployment's values: %v", err)
	}
}
