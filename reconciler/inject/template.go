package inject

import (
	"maps"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/reconciler/agent"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// Names and paths inside an injected pod. The agent's flags and the
// bootstrap paths are the contract with `gitmesh agent`.
const (
	CaptureContainer = "gitmesh-capture"
	AgentContainer   = "gitmesh-agent"
	ProxyContainer   = "envoy"

	// RunVolume is an in-memory emptyDir shared by the agent (writer),
	// Envoy and proxyless applications (readers): certificates, keys and
	// bootstraps. Memory-backed, because it holds a private key.
	RunVolume = "gitmesh-run"
	RunDir    = "/var/run/gitmesh"
	// TokenVolume is the projected service-account token the agent trades
	// for a certificate. Only the agent mounts it, which also lets the
	// kubelet give the file (mode 0600) to the agent's runAsUser.
	TokenVolume   = "gitmesh-token"
	TokenDir      = "/var/run/secrets/gitmesh"
	TokenAudience = "gitmesh"
	// TokenSeconds is the token's lifetime; the kubelet refreshes it at 80%.
	TokenSeconds = 3600

	// RootVolume is the trust bundle serve publishes in every opted-in
	// namespace (certsvc.RootConfigMap): the agent verifies gitmesh's
	// serving certificate with it before it sends its token.
	RootVolume = "gitmesh-ca-root"
	RootDir    = "/etc/gitmesh"

	EnvoyBootstrap = RunDir + "/envoy.json"
	GRPCBootstrap  = RunDir + "/grpc-bootstrap.json"
	CertDir        = RunDir + "/certs"
)

// patchOp is one RFC 6902 operation. Every op is an "add" of a whole
// field: add replaces a member that exists and creates one that does not,
// so one op per field works whatever the pod already has, and the patch
// reads as the fields' new values.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// patchOps builds the injected pod's annotations, init containers,
// containers and volumes and returns them as add ops, in a fixed order.
func patchOps(pod *corev1.Pod, class string, proxyless bool, capture []string, o Options) []patchOp {
	ann := maps.Clone(pod.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[InjectedAnnotation] = "true"
	ann[ClassAnnotation] = class

	agent := agentContainer(class, proxyless, o)
	var sidecars []corev1.Container
	if !proxyless {
		sidecars = []corev1.Container{agent, proxyContainer(class, o)}
	} else {
		sidecars = []corev1.Container{agent}
	}

	// Capture first: its rules must be in place before any sidecar or
	// application container opens a connection. Then the sidecars, so an
	// application init container that calls another service goes through
	// Envoy too. The application's own init containers come last.
	var inits []corev1.Container
	if !proxyless {
		inits = append(inits, captureContainer(capture, o))
	}
	containers := appContainers(pod.Spec.Containers, proxyless)
	if o.NativeSidecars {
		always := corev1.ContainerRestartPolicyAlways
		for i := range sidecars {
			sidecars[i].RestartPolicy = &always
		}
		inits = append(inits, sidecars...)
	} else {
		containers = append(sidecars, containers...)
	}
	inits = append(inits, pod.Spec.InitContainers...)

	volumes := append(append([]corev1.Volume(nil), pod.Spec.Volumes...), runVolume(), tokenVolume(), rootVolume())
	return []patchOp{
		{Op: "add", Path: "/metadata/annotations", Value: ann},
		{Op: "add", Path: "/spec/initContainers", Value: inits},
		{Op: "add", Path: "/spec/containers", Value: containers},
		{Op: "add", Path: "/spec/volumes", Value: volumes},
	}
}

// captureContainer runs `gitmesh capture` once: the only container with
// NET_ADMIN and NET_RAW, and the only one running as root.
func captureContainer(args []string, o Options) corev1.Container {
	root := int64(0)
	return corev1.Container{
		Name:    CaptureContainer,
		Image:   o.AgentImage,
		Command: append([]string{"gitmesh", "capture"}, args...),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                &root,
			RunAsNonRoot:             ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
		Resources: resources("10m", "32Mi"),
	}
}

// agentContainer runs `gitmesh agent`: it trades the projected token for
// the workload certificate, keeps it fresh, and writes the bootstrap the
// proxy (or the proxyless application) reads. It runs as the proxy's
// user so its own connection to gitmesh is not captured into an Envoy that
// is not configured yet.
func agentContainer(class string, proxyless bool, o Options) corev1.Container {
	bootstrap := []string{"--bootstrap-out", EnvoyBootstrap}
	if proxyless {
		bootstrap = []string{"--grpc-bootstrap-out", GRPCBootstrap}
	}
	return corev1.Container{
		Name:  AgentContainer,
		Image: o.AgentImage,
		Command: append([]string{"gitmesh", "agent",
			"--proxy", "$(NODE_ID)",
			"--xds", o.XDSAddress,
			"--token", TokenDir + "/token",
			"--ca", RootDir + "/" + certsvc.RootConfigMapKey,
			"--out", CertDir,
			"--status-addr", ":" + strconv.Itoa(proxyports.AgentStatus),
		}, bootstrap...),
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			// The pod's name is unknown at admission for controller-made
			// pods (generateName), so the kubelet completes the id.
			{Name: "NODE_ID", Value: class + "/$(POD_NAME)"},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: RunVolume, MountPath: RunDir},
			{Name: TokenVolume, MountPath: TokenDir, ReadOnly: true},
			{Name: RootVolume, MountPath: RootDir, ReadOnly: true},
		},
		Ports: []corev1.ContainerPort{
			{Name: "http-agent", ContainerPort: proxyports.AgentStatus, Protocol: corev1.ProtocolTCP},
		},
		// The agent is ready once the certificate and the bootstrap are
		// written. As a native sidecar its startup probe holds the next
		// containers (Envoy, or a proxyless application reading
		// GRPC_XDS_BOOTSTRAP) until then; as a plain container it only
		// delays the pod's readiness.
		StartupProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: agent.ReadyPath, Port: intstr.FromInt32(proxyports.AgentStatus),
			}},
			PeriodSeconds: 1, FailureThreshold: 600,
		},
		SecurityContext: proxyUser(),
		Resources:       resources("10m", "32Mi"),
	}
}

// proxyContainer is Envoy. It waits for the agent's bootstrap (a native
// sidecar counts as started as soon as it runs, so the agent may not have
// written it yet), and is ready when its health listener says so.
//
// OTEL_RESOURCE_ATTRIBUTES names the proxy's tracing service for Envoy's
// OpenTelemetry tracer: render gives that tracer the environment resource
// detector, which reads this variable
// (source/extensions/tracers/opentelemetry/resource_detectors/environment/
// environment_resource_detector.cc), and a detected attribute overrides the
// config's service_name (mergeResource's insert_or_assign in
// resource_detectors/resource_provider.cc). The tracing config stays one
// shared value for every class; each pod says who it is.
func proxyContainer(class string, o Options) corev1.Container {
	health := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: "/healthz/ready", Port: intstr.FromInt32(proxyports.Health),
		}},
		PeriodSeconds: 2, FailureThreshold: 30,
	}
	// The startup probe holds the application's containers until Envoy
	// has its configuration (native sidecars only: the kubelet starts the
	// next container when this one has started).
	startup := &corev1.Probe{ProbeHandler: health.ProbeHandler, PeriodSeconds: 1, FailureThreshold: 600}
	return corev1.Container{
		Name:  ProxyContainer,
		Image: o.ProxyImage,
		Command: []string{"sh", "-c",
			"until [ -s " + EnvoyBootstrap + " ]; do sleep 0.2; done; exec envoy -c " + EnvoyBootstrap + " --log-level warn"},
		Env: []corev1.EnvVar{{Name: "OTEL_RESOURCE_ATTRIBUTES", Value: "service.name=" + tracingService(class)}},
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: proxyports.Stats, Protocol: corev1.ProtocolTCP},
			{Name: "http-health", ContainerPort: proxyports.Health, Protocol: corev1.ProtocolTCP},
		},
		VolumeMounts:    []corev1.VolumeMount{{Name: RunVolume, MountPath: RunDir, ReadOnly: true}},
		ReadinessProbe:  health,
		StartupProbe:    startup,
		SecurityContext: proxyUser(),
		Resources:       resources("100m", "128Mi"),
	}
}

// tracingService is bootstrap.TracingService of a class name this package
// made with nodeid.Sidecar; one that did not parse (it cannot) would
// report under the class name itself.
func tracingService(class string) string {
	c, err := nodeid.ParseClass(class)
	if err != nil {
		return class
	}
	return bootstrap.TracingService(c)
}

// appContainers returns the application's containers; proxyless ones get
// the gRPC bootstrap and the files it names.
func appContainers(cs []corev1.Container, proxyless bool) []corev1.Container {
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		c = *c.DeepCopy()
		if proxyless {
			c.Env = append(c.Env, corev1.EnvVar{Name: "GRPC_XDS_BOOTSTRAP", Value: GRPCBootstrap})
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: RunVolume, MountPath: RunDir, ReadOnly: true})
		}
		out[i] = c
	}
	return out
}

func runVolume() corev1.Volume {
	return corev1.Volume{Name: RunVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory},
	}}
}

func rootVolume() corev1.Volume {
	return corev1.Volume{Name: RootVolume, VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: certsvc.RootConfigMap}},
	}}
}

func tokenVolume() corev1.Volume {
	exp := int64(TokenSeconds)
	return corev1.Volume{Name: TokenVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: &exp, Path: "token",
			},
		}}},
	}}
}

// proxyUser is the security context of the agent and Envoy: the proxy's
// uid and gid (never captured), no privileges, read-only root.
func proxyUser() *corev1.SecurityContext {
	uid, gid := int64(proxyports.ProxyUID), int64(proxyports.ProxyGID)
	return &corev1.SecurityContext{
		RunAsUser:                &uid,
		RunAsGroup:               &gid,
		RunAsNonRoot:             ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

func resources(cpu, mem string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(cpu),
		corev1.ResourceMemory: resource.MustParse(mem),
	}}
}

func ptr[T any](v T) *T { return &v }
