package install

import (
	"context"
	"testing"
	"time"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/gitmesh/gitmesh/internal/kubetest"
)

// TestRBACOnAPIServer asks the real API server's RBAC authorizer, as
// gitmesh's service account, what the install lets it do: everything
// serve does, and nothing around it.
func TestRBACOnAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := NewClient(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Unstructured(Objects(Defaults()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Apply(ctx, objs); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + Namespace + ":" + Name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"},
	}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	type ask struct {
		verb, group, resource, ns, name string
	}
	allowed := []ask{
		{"list", "", "pods", "", ""}, {"watch", "", "pods", "", ""},
		{"list", "", "services", "", ""}, {"watch", "", "services", "", ""},
		{"list", "discovery.k8s.io", "endpointslices", "", ""}, {"watch", "discovery.k8s.io", "endpointslices", "", ""},
		{"create", "authentication.k8s.io", "tokenreviews", "", ""},
		{"get", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", WebhookName},
		{"update", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", WebhookName},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", WebhookName},
		{"get", "coordination.k8s.io", "leases", Namespace, "gitmesh-drift-writer"},
		{"create", "coordination.k8s.io", "leases", Namespace, ""},
		{"update", "coordination.k8s.io", "leases", Namespace, "gitmesh-drift-writer"},
		{"list", "", "namespaces", "", ""}, {"watch", "", "namespaces", "", ""},
		{"list", "", "configmaps", "", ""}, {"watch", "", "configmaps", "", ""},
		{"create", "", "configmaps", "bookinfo", ""}, {"patch", "", "configmaps", "bookinfo", "gitmesh-ca-root-cert"},
	}
	denied := []ask{
		{"get", "", "secrets", Namespace, "gitmesh-ca"}, {"list", "", "secrets", "", ""},
		{"create", "", "pods", "bookinfo", ""}, {"delete", "", "pods", "bookinfo", "x"},
		{"update", "", "services", "bookinfo", "x"},
		{"delete", "", "configmaps", "bookinfo", "gitmesh-ca-root-cert"},
		{"update", "", "namespaces", "", "bookinfo"},
		{"create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""},
		{"patch", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", "someone-elses"},
		{"delete", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", WebhookName},
		{"patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "x"},
		{"create", "coordination.k8s.io", "leases", "default", ""},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""},
		{"create", "", "serviceaccounts/token", "bookinfo", "default"},
		{"create", "apps", "deployments", Namespace, ""},
	}
	check := func(a ask, want bool) {
		r, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.ns, Name: a.name,
			}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review %+v: %v", a, err)
		}
		if r.Status.Allowed != want {
			t.Errorf("%s %s.%s %s/%s: allowed = %v, want %v", a.verb, a.resource, a.group, a.ns, a.name, r.Status.Allowed, want)
		}
	}
	for _, a := range allowed {
		check(a, true)
	}
	for _, a := range denied {
		check(a, false)
	}
}
