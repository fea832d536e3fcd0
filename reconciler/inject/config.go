package inject

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// ConfigOptions describe the MutatingWebhookConfiguration.
type ConfigOptions struct {
	// Name defaults to WebhookConfigName.
	Name string
	// Service is where the API server reaches the webhook in a cluster;
	// URL replaces it when set (tests, or gitmesh running outside the
	// cluster).
	Service *admissionregistrationv1.ServiceReference
	URL     string
	// CABundle is the PEM the API server verifies the serving certificate
	// with: gitmesh's trust bundle.
	CABundle []byte
}

// The in-cluster Service of the control plane and its webhook port
// (Istio's). internal/install creates them under these names.
const (
	ServiceNamespace = "gitmesh-system"
	ServiceName      = "gitmesh"
	WebhookPort      = 15017
)

// DefaultService is the in-cluster address of serve's webhook port.
func DefaultService() *admissionregistrationv1.ServiceReference {
	return &admissionregistrationv1.ServiceReference{
		Namespace: ServiceNamespace, Name: ServiceName, Path: ptr(Path), Port: ptr(int32(WebhookPort)),
	}
}

// WebhookConfiguration returns gitmesh's MutatingWebhookConfiguration:
// two webhooks on pod creation, one for opted-in namespaces and one for
// opted-in pods elsewhere, so a pod is never sent twice.
//
// failurePolicy is Fail: a pod created while gitmesh is unreachable is
// refused (its controller retries) rather than started without its proxy,
// which would silently run it outside mTLS and authorization. Two replicas
// and a PodDisruptionBudget keep that window short, and the control
// plane's own namespaces (kube-system, gitmesh-system) are never matched,
// so gitmesh can always start itself.
func WebhookConfiguration(o ConfigOptions) *admissionregistrationv1.MutatingWebhookConfiguration {
	name := o.Name
	if name == "" {
		name = WebhookConfigName
	}
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: o.CABundle}
	if o.URL != "" {
		cc.URL = ptr(o.URL)
	} else {
		cc.Service = o.Service
		if cc.Service == nil {
			cc.Service = DefaultService()
		}
	}
	notSystem := metav1.LabelSelectorRequirement{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn,
		Values: []string{"kube-system", "gitmesh-system"},
	}
	hook := func(name string, ns, obj *metav1.LabelSelector) admissionregistrationv1.MutatingWebhook {
		return admissionregistrationv1.MutatingWebhook{
			Name:         name,
			ClientConfig: cc,
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr(admissionregistrationv1.Fail),
			MatchPolicy:             ptr(admissionregistrationv1.Equivalent),
			NamespaceSelector:       ns,
			ObjectSelector:          obj,
			SideEffects:             ptr(admissionregistrationv1.SideEffectClassNone),
			TimeoutSeconds:          ptr(int32(10)),
			AdmissionReviewVersions: []string{"v1"},
			// The patch is complete on its own; other webhooks' changes
			// (resources, labels) do not change it.
			ReinvocationPolicy: ptr(admissionregistrationv1.NeverReinvocationPolicy),
		}
	}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			"app.kubernetes.io/name": "gitmesh", "app.kubernetes.io/component": "sidecar-injector",
		}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			// Namespace opt-in; a pod opts out with the label
			// gitmesh.io/inject=false (skipped by the API server) or the
			// annotation (skipped by the handler).
			hook("namespace.sidecar-injector.gitmesh.io",
				&metav1.LabelSelector{
					MatchLabels:      map[string]string{NamespaceLabel: Enabled},
					MatchExpressions: []metav1.LabelSelectorRequirement{notSystem},
				},
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
					Key: NamespaceLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"},
				}}}),
			// Pod opt-in in a namespace that has not opted in (nor out
			// with gitmesh.io/inject=disabled).
			hook("object.sidecar-injector.gitmesh.io",
				&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: NamespaceLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{Enabled, "disabled"}},
					notSystem,
				}},
				&metav1.LabelSelector{MatchLabels: map[string]string{NamespaceLabel: Enabled}}),
		},
	}
}

// Keeper keeps the caBundle of gitmesh's MutatingWebhookConfiguration
// equal to the CA's trust bundle: at start, after a root rotation, and
// after an install that re-applied the object without one. It creates the
// object when it is missing and changes nothing else in it, and no other
// object.
type Keeper struct {
	Client kubernetes.Interface
	// Config is the object to create when none exists; its CABundle is
	// replaced by Bundle's.
	Config ConfigOptions
	// Bundle returns the current trust bundle (PEM).
	Bundle func() []byte
	// Interval between checks; default one minute.
	Interval time.Duration
	Logger   *slog.Logger
}

// Run checks until ctx ends.
func (k *Keeper) Run(ctx context.Context) {
	every := k.Interval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := k.Sync(ctx); err != nil && ctx.Err() == nil && k.Logger != nil {
			k.Logger.Warn("webhook configuration: caBundle not updated; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sync makes one pass: create the configuration if missing, else set the
// caBundle of each of its webhooks that differs.
func (k *Keeper) Sync(ctx context.Context) error {
	bundle := k.Bundle()
	api := k.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	want := k.Config
	want.CABundle = bundle
	name := WebhookConfiguration(want).Name
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if _, err := api.Create(ctx, WebhookConfiguration(want), metav1.CreateOptions{FieldManager: "gitmesh"}); err != nil {
				return fmt.Errorf("create mutatingwebhookconfiguration %q: %w", name, err)
			}
			if k.Logger != nil {
				k.Logger.Info("created the sidecar injector's webhook configuration", "name", name)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("get mutatingwebhookconfiguration %q: %w", name, err)
		}
		changed := false
		for i := range cur.Webhooks {
			if !bytes.Equal(cur.Webhooks[i].ClientConfig.CABundle, bundle) {
				cur.Webhooks[i].ClientConfig.CABundle = bundle
				changed = true
			}
		}
		if !changed {
			return nil
		}
		if _, err := api.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "gitmesh"}); err != nil {
			return fmt.Errorf("update mutatingwebhookconfiguration %q: %w", name, err)
		}
		if k.Logger != nil {
			k.Logger.Info("updated the sidecar injector's caBundle", "name", name)
		}
		return nil
	})
}

// NativeSidecarsSupported reports whether the API server accepts init
// containers with restartPolicy Always: Kubernetes 1.29 turned the
// SidecarContainers feature on by default (1.33 made it GA).
func NativeSidecarsSupported(client kubernetes.Interface) (bool, error) {
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		return false, fmt.Errorf("server version: %w", err)
	}
	return versionAtLeast(v.Major, v.Minor, 1, 29), nil
}

// versionAtLeast compares a server's major and minor strings (minor may
// carry a "+" on managed clusters: "29+").
func versionAtLeast(major, minor string, wantMajor, wantMinor int) bool {
	ma, err1 := strconv.Atoi(strings.TrimSuffix(major, "+"))
	mi, err2 := strconv.Atoi(strings.TrimSuffix(minor, "+"))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > wantMajor || ma == wantMajor && mi >= wantMinor
}
