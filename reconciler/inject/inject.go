// Package inject is gitmesh's sidecar injector: a pure function from a pod,
// the served mesh model and options to the JSON patch that puts the pod in
// the mesh (Inject), the admission/v1 HTTP handler that the API server's
// mutating webhook calls (Handler), and the upkeep of the webhook
// configuration's caBundle (Keeper).
//
// The template is one function of its inputs so the golden tests under
// testdata/ pin every byte the API server will store, and so serve, the
// tests and a future `gitmesh inject` CLI (kube-inject) share it.
package inject

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Names shared with the install manifests (deploy/) and the docs: changing
// one breaks every cluster that opted in with the old name.
const (
	// NamespaceLabel opts a namespace in with the value "enabled"; a pod
	// label of the same key and value opts one pod in.
	NamespaceLabel = "gitmesh.io/inject"
	// OptOutAnnotation with the value "false" keeps a pod out of the mesh
	// (a pod label gitmesh.io/inject=false does too, and lets the API server
	// skip the webhook call altogether).
	OptOutAnnotation = "gitmesh.io/inject"
	// InjectedAnnotation marks an injected pod, so a second pass (a
	// reinvocation, or a pod spec copied from an injected pod) is a no-op.
	InjectedAnnotation = "gitmesh.io/injected"
	// ClassAnnotation records the proxy class the pod was injected for.
	ClassAnnotation = "gitmesh.io/proxy-class"
	// Enabled is the opt-in value of NamespaceLabel.
	Enabled = "enabled"
	// WebhookConfigName is the MutatingWebhookConfiguration serve keeps.
	WebhookConfigName = "gitmesh-sidecar-injector"
)

// Defaults of Options; serve's flags show them.
const (
	DefaultServiceLabel = "app"
	DefaultVersionLabel = "version"
	DefaultProxyImage   = "docker.io/envoyproxy/envoy:v1.36-latest"
	DefaultAgentImage   = "ghcr.io/gitmesh/gitmesh:latest"
	DefaultXDSAddress   = "gitmesh.gitmesh-system.svc:15010"
)

// Options configure the template. The zero value of each field means its
// default, so tests and serve build them the same way.
type Options struct {
	// ServiceLabel and VersionLabel are the pod labels whose values name
	// the mesh service and version ("app", "version").
	ServiceLabel, VersionLabel string
	// ProxyImage is the Envoy image, AgentImage gitmesh's own (it runs
	// `gitmesh capture` and `gitmesh agent`).
	ProxyImage, AgentImage string
	// XDSAddress is where the agent reaches gitmesh (host:port).
	XDSAddress string
	// NativeSidecars puts the agent and Envoy in initContainers with
	// restartPolicy Always (Kubernetes 1.29+), so they start before and
	// stop after the application. Without it they are prepended to the
	// containers, which only orders their start, not their readiness.
	NativeSidecars bool
}

func (o Options) withDefaults() Options {
	def := func(s *string, d string) {
		if *s == "" {
			*s = d
		}
	}
	def(&o.ServiceLabel, DefaultServiceLabel)
	def(&o.VersionLabel, DefaultVersionLabel)
	def(&o.ProxyImage, DefaultProxyImage)
	def(&o.AgentImage, DefaultAgentImage)
	def(&o.XDSAddress, DefaultXDSAddress)
	return o
}

// Result is Inject's decision for one pod.
type Result struct {
	// Patch is the RFC 6902 JSON patch; nil when the pod is admitted
	// unchanged.
	Patch []byte
	// Class is the proxy class the pod joins ("sidecar/NS/SVC/VER"); empty
	// when it is not injected.
	Class string
	// Skipped says why the pod is left unchanged ("" when injected).
	Skipped string
	// Warnings go on the admission response (kubectl prints them).
	Warnings []string
	// Unmatched is set when the pod names no declared service or version;
	// Reason then says how, for the drift report.
	Unmatched bool
	Reason    string
}

// Inject decides whether pod, created in namespace ns, joins the mesh m and
// returns the patch that injects it. It never fails for a pod it cannot
// place: such a pod is admitted unchanged with a warning, because refusing
// it would turn a label typo into an outage. It fails with ErrInvalid for
// a malformed capture annotation, and without it when m is nil (no
// revision served yet); the caller decides what those mean.
func Inject(pod *corev1.Pod, ns string, m *model.Mesh, opts Options) (Result, error) {
	opts = opts.withDefaults()
	if pod.Namespace != "" {
		ns = pod.Namespace
	}
	if v, ok := pod.Annotations[OptOutAnnotation]; ok && v == "false" {
		return Result{Skipped: "opted out by annotation " + OptOutAnnotation + `: "false"`}, nil
	}
	if pod.Labels[NamespaceLabel] == "false" {
		return Result{Skipped: "opted out by label " + NamespaceLabel + "=false"}, nil
	}
	if pod.Annotations[InjectedAnnotation] == "true" || hasContainer(pod, AgentContainer) {
		return Result{Skipped: "already injected"}, nil
	}
	if pod.Spec.HostNetwork {
		return skipWarn("gitmesh: pod %s uses the host network; gitmesh does not inject it (its capture rules would redirect the node's traffic)", podName(pod)), nil
	}
	svcName, verName := pod.Labels[opts.ServiceLabel], pod.Labels[opts.VersionLabel]
	if svcName == "" || verName == "" {
		return unmatched(pod, "no %q and %q labels name a mesh service and version", opts.ServiceLabel, opts.VersionLabel), nil
	}
	if m == nil {
		return Result{}, fmt.Errorf("no mesh revision served yet")
	}
	svc := m.Services[svcName]
	if svc == nil || svc.Namespace != ns {
		return unmatched(pod, "label %s=%q names no service of the mesh in namespace %q", opts.ServiceLabel, svcName, ns), nil
	}
	if svc.Versions[verName] == nil {
		return unmatched(pod, "label %s=%q names no version of service %q (declared: %s)",
			opts.VersionLabel, verName, svcName, strings.Join(sortedKeys(svc.Versions), ", ")), nil
	}
	var class string
	switch svc.Proxy {
	case model.ProxySidecar, "":
		class = nodeid.Sidecar(ns, svcName, verName)
	case model.ProxyProxyless:
		class = nodeid.Proxyless(ns, svcName, verName)
	default:
		return Result{Skipped: fmt.Sprintf("service %q declares proxy %q", svcName, svc.Proxy)}, nil
	}
	res := Result{Class: class}
	if sa := pod.Spec.ServiceAccountName; svc.ServiceAccount != "" && sa != svc.ServiceAccount && !(sa == "" && svc.ServiceAccount == "default") {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"gitmesh: pod %s runs as service account %q but service %q declares %q; its proxy will not get %q's identity",
			podName(pod), orDefault(sa), svcName, svc.ServiceAccount, svcName))
	}
	capture, err := captureArgs(pod)
	if err != nil {
		return Result{}, err
	}
	patch, err := json.Marshal(patchOps(pod, class, svc.Proxy == model.ProxyProxyless, capture, opts))
	if err != nil {
		return Result{}, fmt.Errorf("encode patch: %w", err)
	}
	res.Patch = patch
	return res, nil
}

// unmatched admits a pod unchanged with a warning: a label typo must not
// become an outage, but must not go unnoticed either.
func unmatched(pod *corev1.Pod, format string, args ...any) Result {
	reason := fmt.Sprintf(format, args...)
	msg := fmt.Sprintf("gitmesh: pod %s: %s; admitted without a sidecar", podName(pod), reason)
	return Result{Skipped: msg, Warnings: []string{msg}, Unmatched: true, Reason: reason}
}

func skipWarn(format string, args ...any) Result {
	msg := fmt.Sprintf(format, args...)
	return Result{Skipped: msg, Warnings: []string{msg}}
}

// podName names a pod in warnings; pods created by controllers have only
// a generateName at admission.
func podName(p *corev1.Pod) string {
	switch {
	case p.Name != "":
		return fmt.Sprintf("%q", p.Name)
	case p.GenerateName != "":
		return fmt.Sprintf("%q", p.GenerateName+"*")
	}
	return `""`
}

func orDefault(sa string) string {
	if sa == "" {
		return "default"
	}
	return sa
}

func hasContainer(p *corev1.Pod, name string) bool {
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			if c.Name == name {
				return true
			}
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
