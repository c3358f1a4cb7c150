// Package kube holds small helpers the in-cluster components share: labels
// and the shape of a single-container workload with a Service.
package kube

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// Labels are the standard labels of an in-cluster service liftoff runs.
func Labels(name string) pulumi.StringMap {
	return pulumi.StringMap{outputs.LabelName: pulumi.String(name), outputs.LabelManagedBy: pulumi.String(outputs.ManagedBy)}
}

// Meta is object metadata in a namespace with liftoff's labels.
func Meta(name, namespace string) *metav1.ObjectMetaArgs {
	return &metav1.ObjectMetaArgs{Name: pulumi.String(name), Namespace: pulumi.String(namespace), Labels: Labels(name)}
}

// Restricted is the pod-level security context every in-cluster service runs with.
func Restricted(uid int) *corev1.PodSecurityContextArgs {
	return &corev1.PodSecurityContextArgs{RunAsNonRoot: pulumi.Bool(true), RunAsUser: pulumi.Int(uid), RunAsGroup: pulumi.Int(uid),
		FsGroup: pulumi.Int(uid), SeccompProfile: &corev1.SeccompProfileArgs{Type: pulumi.String("RuntimeDefault")}}
}

// NoPrivileges is the container-level security context.
func NoPrivileges() *corev1.SecurityContextArgs {
	return &corev1.SecurityContextArgs{AllowPrivilegeEscalation: pulumi.Bool(false),
		Capabilities: &corev1.CapabilitiesArgs{Drop: pulumi.StringArray{pulumi.String("ALL")}}}
}

// VolumeClaim is a ReadWriteOnce claim template of size on storageClass ("" = default).
func VolumeClaim(name, size, storageClass string) corev1.PersistentVolumeClaimTypeArgs {
	spec := &corev1.PersistentVolumeClaimSpecArgs{AccessModes: pulumi.StringArray{pulumi.String("ReadWriteOnce")},
		Resources: &corev1.VolumeResourceRequirementsArgs{Requests: pulumi.StringMap{"storage": pulumi.String(size)}}}
	if storageClass != "" {
		spec.StorageClassName = pulumi.String(storageClass)
	}
	return corev1.PersistentVolumeClaimTypeArgs{Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(name)}, Spec: spec}
}

// StatefulService is a one-replica StatefulSet with a volume and a Service in front.
type StatefulService struct {
	Name, Namespace, Image string
	UID                    int
	Port                   int
	Args                   pulumi.StringArrayInput
	Env                    corev1.EnvVarArrayInput
	MountPath, Size        string
	StorageClass           string
	Requests, Limits       pulumi.StringMap
	// Probe checks startup and readiness every 2 s (so a starting pod is
	// found ready within 2 s) and liveness every 10 s; see probes.
	Probe       *corev1.ProbeArgs
	ServiceType string
	NodePort    int
	// ExtraVolumes are mounted next to the data volume (e.g. a Secret).
	ExtraVolumes corev1.VolumeArray
	ExtraMounts  corev1.VolumeMountArray
	// Admit, when set, is who alone reaches Port (a NetworkPolicy).
	Admit *Admission
}

// Declare creates the StatefulSet and its Service.
func (s StatefulService) Declare(ctx *pulumi.Context, prefix string, opts ...pulumi.ResourceOption) (*appsv1.StatefulSet, *corev1.Service, error) {
	labels := Labels(s.Name)
	ctr := corev1.ContainerArgs{Name: pulumi.String(s.Name), Image: pulumi.String(s.Image), Args: s.Args, Env: s.Env,
		Ports:           corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("main"), ContainerPort: pulumi.Int(s.Port)}},
		VolumeMounts:    append(corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("data"), MountPath: pulumi.String(s.MountPath)}}, s.ExtraMounts...),
		Resources:       &corev1.ResourceRequirementsArgs{Requests: s.Requests, Limits: s.Limits},
		SecurityContext: NoPrivileges(),
	}
	ctr.StartupProbe, ctr.ReadinessProbe, ctr.LivenessProbe = probes(s.Probe)
	// A component that cannot start (an image that does not pull) fails
	// the infrastructure phase after 5 minutes, not the provider's 10.
	opts = append(opts, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: "5m", Update: "5m"}))
	sts, err := appsv1.NewStatefulSet(ctx, prefix, &appsv1.StatefulSetArgs{
		Metadata: Meta(s.Name, s.Namespace),
		Spec: &appsv1.StatefulSetSpecArgs{
			ServiceName: pulumi.String(s.Name), Replicas: pulumi.Int(1),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: labels},
			Template: &corev1.PodTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels},
				Spec: &corev1.PodSpecArgs{SecurityContext: Restricted(s.UID), AutomountServiceAccountToken: pulumi.Bool(false),
					Containers: corev1.ContainerArray{ctr}, Volumes: s.ExtraVolumes},
			},
			VolumeClaimTemplates: corev1.PersistentVolumeClaimTypeArray{VolumeClaim("data", s.Size, s.StorageClass)},
		},
	}, opts...)
	if err != nil {
		return nil, nil, err
	}
	port := corev1.ServicePortArgs{Name: pulumi.String("main"), Port: pulumi.Int(s.Port), TargetPort: pulumi.String("main")}
	if s.NodePort != 0 {
		port.NodePort = pulumi.Int(s.NodePort)
	}
	typ := s.ServiceType
	if typ == "" {
		typ = "ClusterIP"
	}
	meta := Meta(s.Name, s.Namespace)
	if typ != "LoadBalancer" {
		// The provider waits a fixed 10 s for a Service's endpoints; the
		// StatefulSet's own await already waited for its pod to be ready,
		// and a Service without a load balancer has nothing else to settle.
		meta.Annotations = pulumi.StringMap{"pulumi.com/skipAwait": pulumi.String("true")}
	}
	svc, err := corev1.NewService(ctx, prefix, &corev1.ServiceArgs{
		Metadata: meta,
		Spec:     &corev1.ServiceSpecArgs{Type: pulumi.String(typ), Selector: labels, Ports: corev1.ServicePortArray{port}},
	}, opts...)
	if err == nil && s.Admit != nil {
		err = declarePolicy(ctx, prefix, s.Name, s.Namespace, s.Port, *s.Admit, opts...)
	}
	return sts, svc, err
}

// probes are p as a stateful service's startup, readiness and liveness
// probes. Liveness, which restarts the container, counts only once the
// startup probe passed: a server still initialising its volume (initdb on
// a slow disk) is given 5 minutes, as long as the StatefulSet's create,
// and is never killed half-way through. Each check may take 5 s, not
// Kubernetes' default 1 s (an exec probe on a busy node takes longer), and
// a live server is restarted only after a minute without an answer.
func probes(p *corev1.ProbeArgs) (startup, ready, live *corev1.ProbeArgs) {
	if p == nil {
		return nil, nil, nil
	}
	probe := func(period, failures int) *corev1.ProbeArgs {
		c := *p
		c.PeriodSeconds, c.TimeoutSeconds, c.FailureThreshold = pulumi.Int(period), pulumi.Int(5), pulumi.Int(failures)
		return &c
	}
	return probe(2, 150), probe(2, 3), probe(10, 6)
}

// NewProvider declares the Kubernetes provider every program's in-cluster
// resources go through. Secrets are updated in place (enableSecretMutable):
// by default the provider replaces a Secret whose data changes, which
// turns a password rotation into the replacement of the Secret and of the
// StatefulSet that reads it.
func NewProvider(ctx *pulumi.Context, name string, args *kubernetes.ProviderArgs, opts ...pulumi.ResourceOption) (*kubernetes.Provider, error) {
	args.EnableSecretMutable = pulumi.Bool(true)
	return kubernetes.NewProvider(ctx, name, args, opts...)
}
