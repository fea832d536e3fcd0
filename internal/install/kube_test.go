package install

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/gitmesh/gitmesh/internal/kubetest"
)

// resourceVersions maps each object's Ref to its resourceVersion.
func resourceVersions(objs []*unstructured.Unstructured) map[string]string {
	m := map[string]string{}
	for _, o := range objs {
		m[Ref(o)] = o.GetResourceVersion()
	}
	return m
}

// TestApplyToAPIServer: the real API server accepts the kustomize output
// and the chart by server-side apply; applying the install again (and the
// other rendering of it) moves no resourceVersion, and leaves the caBundle
// serve wrote; uninstall leaves nothing behind.
func TestApplyToAPIServer(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := NewClient(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	first, err := cl.Apply(ctx, parse(t, kustomizeBuild(t)))
	if err != nil {
		t.Fatalf("apply kustomize build: %v", err)
	}
	if len(first) != 11 {
		t.Fatalf("applied %d objects, want 11", len(first))
	}
	rv := resourceVersions(first)

	// serve keeps the webhook's caBundle current as reconciler/inject's
	// Keeper does: get, set every webhook's caBundle, update.
	mwcs := c.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, WebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig.CABundle = []byte("ca")
	}
	if mwc, err = mwcs.Update(ctx, mwc, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		t.Fatalf("update caBundle: %v", err)
	}
	rv[Ref(first[len(first)-1])] = mwc.ResourceVersion

	install, err := Unstructured(Objects(Defaults()))
	if err != nil {
		t.Fatal(err)
	}
	for name, objs := range map[string][]*unstructured.Unstructured{
		"helm template":   parse(t, helmTemplate(t, nil)),
		"gitmesh install": install,
	} {
		again, err := cl.Apply(ctx, objs)
		if err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
		if got := resourceVersions(again); len(got) != len(rv) {
			t.Errorf("%s: applied %d objects, want %d", name, len(got), len(rv))
		} else {
			for ref, v := range rv {
				if got[ref] != v {
					t.Errorf("%s changed %s (resourceVersion %s -> %s)", name, ref, v, got[ref])
				}
			}
		}
	}
	mwc, err = mwcs.Get(ctx, WebhookName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range mwc.Webhooks {
		if got := string(h.ClientConfig.CABundle); got != "ca" {
			t.Errorf("%s: caBundle after install = %q, want serve's %q", h.Name, got, "ca")
		}
	}

	deleted, err := cl.Delete(ctx, install)
	if err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if len(deleted) != len(install) {
		t.Errorf("uninstall deleted %d objects, want %d", len(deleted), len(install))
	}
	for _, o := range install {
		r, err := cl.resource(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Get(ctx, o.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			t.Errorf("get %s: %v", Ref(o), err)
		case o.GetKind() == "Namespace" && got.GetDeletionTimestamp() != nil:
			// no namespace controller runs here to remove its finalizer
		default:
			t.Errorf("%s is still there after uninstall", Ref(o))
		}
	}
	// Uninstalling what is gone is not an error and deletes nothing.
	if again, err := cl.Delete(ctx, install[1:]); err != nil || len(again) != 0 {
		t.Errorf("second uninstall: deleted %d, err %v", len(again), err)
	}
}
