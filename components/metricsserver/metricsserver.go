// Package metricsserver declares metrics-server, the cluster's metrics API
// (metrics.k8s.io: the pods' and nodes' CPU and memory, read from each
// kubelet's resource metrics), which HorizontalPodAutoscalers need. liftoff
// installs it on a cluster that has none when a stack autoscales. The
// objects are upstream's v0.8.0 manifest (components.yaml), with the
// cluster-wide names prefixed by liftoff so they never collide with a
// metrics-server the cluster gets later, and requests sized for the small
// clusters liftoff makes.
package metricsserver

import (
	"fmt"
	"maps"

	apiregv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiregistration/v1"
	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/config"
)

// DefaultImage is the official metrics-server image, by tag.
const DefaultImage = "registry.k8s.io/metrics-server/metrics-server:v0.8.0"

// Keys are the settings of the metrics-server liftoff installs, for the
// targets that offer it (kubeconfig, aws; k3s ships its own).
var Keys = []config.Key{
	{Name: "liftoff:metricsServer", Type: "string", Default: "auto", Doc: "`auto`: when the stack autoscales (`autoscale`) and the cluster has no metrics API, up installs metrics-server v0.8.0 (`kube-system/liftoff-metrics-server`), and removes it when autoscaling is turned off. On kubeconfig, up looks first (`kubectl get apiservice v1beta1.metrics.k8s.io`): a cluster with its own, or another stack's, keeps it. On aws, the cluster is liftoff's own: set `off` if you add the EKS metrics-server add-on. `off`: never. See [rollouts.md](rollouts.md#metrics-server)."},
	{Name: "liftoff:metricsServerImage", Type: "string", Default: DefaultImage, Doc: "Image of the metrics-server liftoff installs (a mirror for air-gapped clusters); it must run metrics-server v0.8.0's flags."},
}

// Settings are Keys' values.
type Settings struct {
	// Mode is "auto" or "off".
	Mode, Image string
}

// Parse reads Keys.
func Parse(r *config.Reader) Settings {
	return Settings{Mode: r.Enum("liftoff:metricsServer", "auto", "auto", "off"), Image: r.Str("liftoff:metricsServerImage", DefaultImage, config.ImageRef)}
}

// Wanted: a stack with s that autoscales may need metrics-server.
func (s Settings) Wanted(cfg *config.Stack) bool {
	return cfg.Rollout.AutoscaleMax > 0 && s.Mode == "auto"
}

// APIService is the metrics API's registration: one per cluster.
const APIService = "v1beta1.metrics.k8s.io"

// Namespace is where liftoff runs it, as clusters run theirs.
const Namespace = "kube-system"

// Args configure New.
type Args struct {
	Namespace string
	// Image runs metrics-server v0.8.0 (its entrypoint, its flags).
	Image string
	// Labels go on every object (the stack's owner labels: up knows its own
	// APIService from another's by them).
	Labels pulumi.StringMap
}

// MetricsServer is metrics-server and its registration as the cluster's
// metrics API.
type MetricsServer struct {
	pulumi.ResourceState
	// Service is namespace/name of the Service the API server reaches it by.
	Service pulumi.StringOutput `pulumi:"service"`
}

// name is liftoff's install's, beside any other in kube-system.
const name = "liftoff-metrics-server"

// New declares metrics-server in args.Namespace.
func New(ctx *pulumi.Context, resName string, args *Args, opts ...pulumi.ResourceOption) (*MetricsServer, error) {
	if args == nil || args.Namespace == "" || args.Image == "" {
		return nil, fmt.Errorf("metricsserver: namespace and image are required")
	}
	m := &MetricsServer{}
	if err := ctx.RegisterComponentResource("liftoff:metrics:MetricsServer", resName, m, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(m)
	labels := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name), "app.kubernetes.io/managed-by": pulumi.String("liftoff")}
	maps.Copy(labels, args.Labels)
	meta := func(n, ns string) *metav1.ObjectMetaArgs {
		m := &metav1.ObjectMetaArgs{Name: pulumi.String(n), Labels: labels}
		if ns != "" {
			m.Namespace = pulumi.String(ns)
		}
		return m
	}
	// Cluster-wide names are liftoff's, not upstream's.
	cluster := "liftoff:metrics-server"
	sa, err := corev1.NewServiceAccount(ctx, resName+"-sa", &corev1.ServiceAccountArgs{Metadata: meta(name, args.Namespace)}, child)
	if err != nil {
		return nil, err
	}
	subject := rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(name), Namespace: pulumi.String(args.Namespace)}}
	// What it reads: the kubelets' resource metrics, the nodes and pods.
	read := pulumi.ToStringArray([]string{"get", "list", "watch"})
	role, err := rbacv1.NewClusterRole(ctx, resName+"-role", &rbacv1.ClusterRoleArgs{Metadata: meta(cluster, ""), Rules: rbacv1.PolicyRuleArray{
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"nodes/metrics"}), Verbs: pulumi.ToStringArray([]string{"get"})},
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"pods", "nodes"}), Verbs: read},
	}}, child)
	if err != nil {
		return nil, err
	}
	// Who may read the metrics API: whoever may view, edit or administer
	// (the aggregated roles upstream's manifest adds to).
	reader := meta(cluster+":reader", "")
	readerLabels := maps.Clone(labels)
	for _, r := range []string{"view", "edit", "admin"} {
		readerLabels["rbac.authorization.k8s.io/aggregate-to-"+r] = pulumi.String("true")
	}
	reader.Labels = readerLabels
	if _, err := rbacv1.NewClusterRole(ctx, resName+"-reader", &rbacv1.ClusterRoleArgs{Metadata: reader, Rules: rbacv1.PolicyRuleArray{
		rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{"metrics.k8s.io"}), Resources: pulumi.ToStringArray([]string{"pods", "nodes"}), Verbs: read},
	}}, child); err != nil {
		return nil, err
	}
	bindings := []struct{ name, role string }{
		{cluster, cluster},
		// Delegated authentication and authorization, as every aggregated API server.
		{cluster + ":auth-delegator", "system:auth-delegator"},
	}
	for i, b := range bindings {
		if _, err := rbacv1.NewClusterRoleBinding(ctx, fmt.Sprintf("%s-binding-%d", resName, i), &rbacv1.ClusterRoleBindingArgs{Metadata: meta(b.name, ""),
			RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("ClusterRole"), Name: pulumi.String(b.role)},
			Subjects: subject}, child, pulumi.DependsOn([]pulumi.Resource{role, sa})); err != nil {
			return nil, err
		}
	}
	// The request-header CA it trusts the API server's proxied calls by.
	if _, err := rbacv1.NewRoleBinding(ctx, resName+"-auth-reader", &rbacv1.RoleBindingArgs{Metadata: meta(cluster+":auth-reader", "kube-system"),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: pulumi.String("extension-apiserver-authentication-reader")},
		Subjects: subject}, child); err != nil {
		return nil, err
	}

	selector := pulumi.StringMap{"app.kubernetes.io/name": pulumi.String(name)}
	svc, err := corev1.NewService(ctx, resName+"-svc", &corev1.ServiceArgs{Metadata: meta(name, args.Namespace), Spec: &corev1.ServiceSpecArgs{
		Selector: selector,
		Ports:    corev1.ServicePortArray{corev1.ServicePortArgs{Name: pulumi.String("https"), Port: pulumi.Int(443), TargetPort: pulumi.String("https")}},
	}}, child)
	if err != nil {
		return nil, err
	}
	probe := func(path string, failures int) *corev1.ProbeArgs {
		return &corev1.ProbeArgs{HttpGet: &corev1.HTTPGetActionArgs{Path: pulumi.String(path), Port: pulumi.String("https"), Scheme: pulumi.String("HTTPS")},
			PeriodSeconds: pulumi.Int(10), FailureThreshold: pulumi.Int(failures)}
	}
	ready := probe("/readyz", 3)
	ready.InitialDelaySeconds = pulumi.Int(20)
	sec := kube.NoPrivileges()
	sec.ReadOnlyRootFilesystem = pulumi.Bool(true)
	dep, err := appsv1.NewDeployment(ctx, resName+"-deploy", &appsv1.DeploymentArgs{Metadata: meta(name, args.Namespace), Spec: &appsv1.DeploymentSpecArgs{
		Replicas: pulumi.Int(1),
		Selector: &metav1.LabelSelectorArgs{MatchLabels: selector},
		Strategy: &appsv1.DeploymentStrategyArgs{RollingUpdate: &appsv1.RollingUpdateDeploymentArgs{MaxUnavailable: pulumi.Int(0)}},
		Template: &corev1.PodTemplateSpecArgs{
			Metadata: &metav1.ObjectMetaArgs{Labels: selector},
			Spec: &corev1.PodSpecArgs{
				ServiceAccountName: pulumi.String(name),
				SecurityContext:    kube.Restricted(1000),
				Containers: corev1.ContainerArray{corev1.ContainerArgs{
					Name:  pulumi.String(name),
					Image: pulumi.String(args.Image),
					Args: pulumi.ToStringArray([]string{"--cert-dir=/tmp", "--secure-port=10250",
						"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname", "--kubelet-use-node-status-port",
						"--metric-resolution=15s"}),
					Ports:           corev1.ContainerPortArray{corev1.ContainerPortArgs{Name: pulumi.String("https"), ContainerPort: pulumi.Int(10250)}},
					ReadinessProbe:  ready,
					LivenessProbe:   probe("/livez", 3),
					SecurityContext: sec,
					// Upstream asks 100m/200Mi, sized for 100 nodes; a few nodes
					// need a fraction (docs/rollouts.md has the measured use).
					Resources: &corev1.ResourceRequirementsArgs{
						Requests: pulumi.StringMap{"cpu": pulumi.String("20m"), "memory": pulumi.String("64Mi")},
						Limits:   pulumi.StringMap{"memory": pulumi.String("256Mi")},
					},
					VolumeMounts: corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("tmp"), MountPath: pulumi.String("/tmp")}},
				}},
				Volumes: corev1.VolumeArray{corev1.VolumeArgs{Name: pulumi.String("tmp"), EmptyDir: &corev1.EmptyDirVolumeSourceArgs{}}},
			},
		},
	}}, child, pulumi.DependsOn([]pulumi.Resource{sa}))
	if err != nil {
		return nil, err
	}
	// Registered last, once its pods can answer: the API server's discovery
	// reports an unavailable APIService as a failed group to every client.
	if _, err := apiregv1.NewAPIService(ctx, resName+"-apiservice", &apiregv1.APIServiceArgs{Metadata: meta(APIService, ""), Spec: &apiregv1.APIServiceSpecArgs{
		Group: pulumi.String("metrics.k8s.io"), Version: pulumi.String("v1beta1"),
		GroupPriorityMinimum: pulumi.Int(100), VersionPriority: pulumi.Int(100),
		// Its serving certificate is its own, self-signed (as upstream's manifest).
		InsecureSkipTLSVerify: pulumi.Bool(true),
		Service:               &apiregv1.ServiceReferenceArgs{Name: pulumi.String(name), Namespace: pulumi.String(args.Namespace)},
	}}, child, pulumi.DependsOn([]pulumi.Resource{dep, svc})); err != nil {
		return nil, err
	}
	m.Service = pulumi.Sprintf("%s/%s", args.Namespace, name)
	return m, ctx.RegisterResourceOutputs(m, pulumi.Map{"service": m.Service})
}
