package install

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Client applies and deletes objects of any kind the API server serves.
type Client struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

// NewClient builds a Client for cfg; kinds are mapped to resources through
// the server's discovery, so whatever kustomize or Helm printed can be
// applied too.
func NewClient(cfg *rest.Config) (*Client, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

func (c *Client) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", gvk.Kind, u.GetName(), err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
	}
	return c.dyn.Resource(m.Resource), nil
}

// Ref names one object as kubectl does: kind/namespace/name.
func Ref(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s/%s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s/%s", u.GetKind(), u.GetName())
}

// Apply server-side applies each object in order with FieldManager, taking
// ownership of the fields it sets (force: install is the owner of these
// objects, as istioctl install is). It returns the objects as stored.
// Applying the same objects again changes nothing: no resourceVersion moves.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	force := true
	var out []*unstructured.Unstructured
	for _, u := range objs {
		r, err := c.resource(u)
		if err != nil {
			return out, err
		}
		body, err := u.MarshalJSON()
		if err != nil {
			return out, fmt.Errorf("%s: %w", Ref(u), err)
		}
		got, err := r.Patch(ctx, u.GetName(), types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
		if err != nil {
			return out, fmt.Errorf("apply %s: %w", Ref(u), err)
		}
		out = append(out, got)
	}
	return out, nil
}

// Delete deletes the objects in reverse order and waits until each is gone
// (or, for a namespace, terminating: its finalizer is the namespace
// controller's to run). It returns the objects it deleted; missing ones
// are not an error, so uninstall can be run twice.
func (c *Client) Delete(ctx context.Context, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	bg := metav1.DeletePropagationBackground
	var deleted []*unstructured.Unstructured
	for i := len(objs) - 1; i >= 0; i-- {
		u := objs[i]
		r, err := c.resource(u)
		if err != nil {
			return deleted, err
		}
		err = r.Delete(ctx, u.GetName(), metav1.DeleteOptions{PropagationPolicy: &bg})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return deleted, fmt.Errorf("delete %s: %w", Ref(u), err)
		}
		deleted = append(deleted, u)
		if err := waitGone(ctx, r, u); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func waitGone(ctx context.Context, r dynamic.ResourceInterface, u *unstructured.Unstructured) error {
	for {
		got, err := r.Get(ctx, u.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for %s to go: %w", Ref(u), err)
		}
		if u.GetKind() == "Namespace" && got.GetDeletionTimestamp() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to go: %w", Ref(u), errors.Join(ctx.Err(), errors.New("still present")))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
