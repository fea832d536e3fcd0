// Package install is the one definition of what gitmesh runs on a
// Kubernetes cluster: the objects `gitmesh install` applies, and the
// source of deploy/kustomize and deploy/helm/gitmesh (generated from it by
// TestDeployFiles -update, and checked to give the same objects).
package install

import (
	"github.com/gitmesh/gitmesh/reconciler/inject"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The names other parts of gitmesh rely on (the injected agent dials
// Name.Namespace.svc:XDSPort; serve keeps WebhookName's caBundle current).
const (
	Namespace   = inject.ServiceNamespace
	Name        = inject.ServiceName
	WebhookName = inject.WebhookConfigName
	// InjectLabel opts a namespace in to sidecar injection.
	InjectLabel = inject.NamespaceLabel
	// WebhookPath is where serve answers AdmissionReview requests.
	WebhookPath = inject.Path
	// FieldManager owns the fields `gitmesh install` applies. serve writes
	// the webhook's caBundle with an Update (reconciler/inject's Keeper):
	// managed fields are kept per manager and operation, so a second
	// install, which applies no caBundle, leaves serve's in place
	// (TestApplyToAPIServer). serve must not server-side apply that object
	// under this manager, or an install would remove the caBundle.
	FieldManager = "gitmesh"
)

// The control plane's ports: xDS (and certificate signing) as the agent's
// --xds default, status as serve's --http-addr default, the webhook as
// Istio's.
const (
	XDSPort     = 15010
	StatusPort  = 15014
	WebhookPort = inject.WebhookPort
)

// The Secrets the Deployment reads; install never creates them (they hold
// credentials, which belong in no manifest).
const (
	// GitSecret's keys become the container's environment (envFrom), so
	// it carries GITMESH_REPO and the credential flags of serve, e.g.
	// GITMESH_GIT_TOKEN_ENV=GIT_TOKEN and GIT_TOKEN=….
	GitSecret = "gitmesh-git"
	// WebhookSecret's key "secret" is the shared secret of the push webhooks.
	WebhookSecret = "gitmesh-webhook"
	// CASecret holds the plug-in intermediate CA both replicas sign with
	// (keys ca-cert.pem, ca-key.pem, ca-chain.pem): with a self-signed root
	// in each replica's emptyDir, the two would not trust each other's
	// certificates.
	CASecret = "gitmesh-ca"
)

// Options are what differs between installs. Everything else is fixed,
// because other components depend on it (names, ports, labels).
type Options struct {
	// Image is the gitmesh image the Deployment runs.
	Image string
	// Replicas of the Deployment; drift writing is leader-elected among
	// them, xDS and the webhook are served by all.
	Replicas int32
	// Resources of the gitmesh container.
	Resources corev1.ResourceRequirements
}

// DefaultImage is the image the manifests name unless told otherwise.
const DefaultImage = "ghcr.io/gitmesh/gitmesh:latest"

// Defaults returns the options deploy/ is generated with.
//
// Resources come from README's Load figures: 1,000 services with 1,000
// delta streams peak at 256 MB, so the request is 512Mi; an unscoped mesh
// of that size peaks at 0.92 GB and the CUE evaluation worker (a child
// process in the same cgroup) may take up to --max-eval-memory (1 GiB) on
// top, so the limit is 2Gi. A full push of that mesh is 0.4 s of one core:
// 500m requested, no CPU limit (throttling would only slow pushes down).
func Defaults() Options {
	return Options{
		Image:    DefaultImage,
		Replicas: 2,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("500m"),
				corev1.ResourceMemory: resource.MustParse("512Mi"),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("2Gi"),
			},
		},
	}
}

// labels are on every object, so `kubectl get -l` finds them all.
func labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":    Name,
		"app.kubernetes.io/part-of": Name,
	}
}

// selector picks the control plane's pods.
func selector() map[string]string {
	return map[string]string{"app.kubernetes.io/name": Name}
}

func objMeta(name, ns string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels()}
}

// Objects returns the objects of an install in the order they are applied
// (the namespace first, the webhook last, so it never points at a Service
// that does not exist yet); uninstall deletes them in reverse.
func Objects(o Options) []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: objMeta(Namespace, ""),
		},
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: objMeta(Name, Namespace),
		},
		clusterRole(),
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: objMeta(Name, ""),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: Namespace}},
		},
		// Leases only in its own namespace: leader election for the drift
		// writer (--leader-election-namespace defaults to the pod's).
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: objMeta(Name, Namespace),
			Rules: []rbacv1.PolicyRule{{
				APIGroups: []string{"coordination.k8s.io"},
				Resources: []string{"leases"},
				Verbs:     []string{"get", "create", "update"},
			}},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: objMeta(Name, Namespace),
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: Name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: Name, Namespace: Namespace}},
		},
		service(),
		deployment(o),
		pdb(),
		dashboards(),
		webhook(),
	}
}

// clusterRole is everything serve does outside its namespace and no more:
// discovery reads Services, EndpointSlices and Pods (informers: list and
// watch); identity creates TokenReviews, and publishes the trust bundle as
// the ConfigMap gitmesh-ca-root-cert (server-side apply: patch, create) in
// the opted-in namespaces it watches, as istiod does with
// istio-ca-root-cert; the injector keeps its own webhook configuration's
// caBundle (resourceNames: that one object only; install creates it, so
// serve needs no create there).
func clusterRole() *rbacv1.ClusterRole {
	read := []string{"get", "list", "watch"}
	return &rbacv1.ClusterRole{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: objMeta(Name, ""),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list", "watch", "create", "patch"}},
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{
				APIGroups:     []string{"admissionregistration.k8s.io"},
				Resources:     []string{"mutatingwebhookconfigurations"},
				ResourceNames: []string{WebhookName},
				Verbs:         []string{"get", "update", "patch"},
			},
		},
	}
}

// service fronts every replica on the three ports: xDS and the webhook are
// served by all replicas alike.
func service() *corev1.Service {
	port := func(name string, n int32, proto string) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: n, TargetPort: intstr.FromString(name), Protocol: corev1.ProtocolTCP, AppProtocol: &proto}
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objMeta(Name, Namespace),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(),
			Ports: []corev1.ServicePort{
				port("grpc-xds", XDSPort, "grpc"),
				port("http-status", StatusPort, "http"),
				port("https-webhook", WebhookPort, "https"),
			},
		},
	}
}

// pdb lets a drain take one replica at a time. maxUnavailable rather than
// minAvailable: with --replicas 1 a drain still proceeds (the webhook and
// xDS are then briefly away) instead of blocking forever.
func pdb() *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objMeta(Name, Namespace),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: selector()},
		},
	}
}

// webhook sends pod creations of opted-in namespaces and opted-in pods to
// serve. It is the object serve's injector creates when none exists
// (reconciler/inject WebhookConfiguration, golden file
// reconciler/inject/testdata/out/webhook-configuration.yaml on the inject
// branch), field for field: two webhooks, so a pod is never sent twice.
//
// failurePolicy is Fail: in a namespace that asked for the mesh, a pod
// started without its sidecar would run outside mTLS and authorization,
// which is worse than a pod that waits for the control plane (two replicas
// and the PDB keep one answering). kube-system and gitmesh-system are
// never matched, so gitmesh can always start itself. caBundle is empty
// here: serve fills it at run time with its CA's root (an Update under its
// own operation, which a later install does not undo).
func webhook() *admissionv1.MutatingWebhookConfiguration {
	// The injector owns its configuration (reconciler/inject); install
	// applies that same object, without the caBundle serve fills in.
	w := inject.WebhookConfiguration(inject.ConfigOptions{})
	w.TypeMeta = metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"}
	return w
}
