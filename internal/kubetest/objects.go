package kubetest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// LabelNamespace sets label key=value on namespace ns (how a namespace
// opts in to injection or root publishing).
func (c *Cluster) LabelNamespace(t testing.TB, ns, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{key: value}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("kubetest: label namespace %s with %s=%s: %v", ns, key, value, err)
	}
}

// ServiceAccount creates service account name in namespace ns.
func (c *Cluster) ServiceAccount(t testing.TB, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create service account %s/%s: %v", ns, name, err)
	}
	return sa
}

// Token returns a TokenRequest token of service account sa of namespace
// ns for audiences (the API server's own when none), valid for the API
// server's default hour: what kubelet projects into a pod.
func (c *Cluster) Token(t testing.TB, ns, sa string, audiences ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: audiences}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: TokenRequest for %s/%s: %v", ns, sa, err)
	}
	return tr.Status.Token
}
