package install

import (
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// RunAsUser is the control plane's uid (distroless's "nonroot"), the same
// as the image's USER.
const RunAsUser = 65532

// Paths inside the container.
const (
	stateDir       = "/var/lib/gitmesh"
	webhookDir     = "/etc/gitmesh/webhook"
	caDir          = "/etc/gitmesh/ca"
	tmpDir         = "/tmp"
	stateSizeLimit = "1Gi" // the Git cache: repositories are capped at 64 MiB (--max-repo-size)
)

// deployment runs serve. Its flags are set through GITMESH_* variables
// (serve reads one for every flag), the Git remote and credentials come
// from the GitSecret's keys, and nothing is written outside the two
// emptyDirs: the root filesystem is read-only.
func deployment(o Options) *appsv1.Deployment {
	replicas := o.Replicas
	yes, no := true, false
	uid := int64(RunAsUser)
	env := []corev1.EnvVar{
		{Name: "GITMESH_XDS_ADDR", Value: ":" + strconv.Itoa(XDSPort)},
		{Name: "GITMESH_HTTP_ADDR", Value: ":" + strconv.Itoa(StatusPort)},
		{Name: "GITMESH_XDS_SERVER_NAMES", Value: Name + "." + Namespace + ".svc," + Name + "." + Namespace + ".svc.cluster.local"},
		{Name: "GITMESH_STATE_DIR", Value: stateDir},
		{Name: "GITMESH_KUBERNETES", Value: "on"},
		{Name: "GITMESH_LEADER_ELECT", Value: "on"},
		{Name: "GITMESH_LEADER_ELECTION_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"},
		}},
		{Name: "GITMESH_WEBHOOK_SECRET_FILE", Value: webhookDir + "/secret"},
		{Name: "GITMESH_CA_CERT", Value: caDir + "/ca-cert.pem"},
		{Name: "GITMESH_CA_KEY", Value: caDir + "/ca-key.pem"},
		{Name: "GITMESH_CA_CHAIN", Value: caDir + "/ca-chain.pem"},
		{Name: "GITMESH_LOG_FORMAT", Value: "json"},
		{Name: "TMPDIR", Value: tmpDir},
	}
	sizeLimit := resource.MustParse(stateSizeLimit)
	readOnly := int32(0o440)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http-status")}},
			PeriodSeconds: 10,
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objMeta(Name, Namespace),
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: selector()},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels()},
				Spec: corev1.PodSpec{
					ServiceAccountName:           Name,
					AutomountServiceAccountToken: &yes,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   &yes,
						RunAsUser:      &uid,
						RunAsGroup:     &uid,
						FSGroup:        &uid,
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					// Spread the replicas, so a node going away leaves one.
					Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
						PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
							Weight: 100,
							PodAffinityTerm: corev1.PodAffinityTerm{
								TopologyKey:   "kubernetes.io/hostname",
								LabelSelector: &metav1.LabelSelector{MatchLabels: selector()},
							},
						}},
					}},
					Containers: []corev1.Container{{
						Name:  Name,
						Image: o.Image,
						Args:  []string{"serve"},
						Ports: []corev1.ContainerPort{
							{Name: "grpc-xds", ContainerPort: XDSPort, Protocol: corev1.ProtocolTCP},
							{Name: "http-status", ContainerPort: StatusPort, Protocol: corev1.ProtocolTCP},
							{Name: "https-webhook", ContainerPort: WebhookPort, Protocol: corev1.ProtocolTCP},
						},
						Env:            env,
						EnvFrom:        []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: GitSecret}}}},
						Resources:      o.Resources,
						ReadinessProbe: probe("/readyz"),
						LivenessProbe:  probe("/healthz"),
						SecurityContext: &corev1.SecurityContext{
							Privileged:               &no,
							AllowPrivilegeEscalation: &no,
							ReadOnlyRootFilesystem:   &yes,
							RunAsNonRoot:             &yes,
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "state", MountPath: stateDir},
							{Name: "tmp", MountPath: tmpDir},
							{Name: "webhook-secret", MountPath: webhookDir, ReadOnly: true},
							{Name: "ca", MountPath: caDir, ReadOnly: true},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &sizeLimit}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						{Name: "webhook-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: WebhookSecret, DefaultMode: &readOnly}}},
						{Name: "ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: CASecret, DefaultMode: &readOnly}}},
					},
				},
			},
		},
	}
}
