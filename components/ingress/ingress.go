// Package ingress is the app's one public entry point on aws: Traefik behind
// a Network Load Balancer (TLS terminated there with an ACM certificate when
// a domain is configured), and an Ingress routing to the app's live Service.
package ingress

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/upstream"
)

// Traefik is the pinned chart.
var Traefik = upstream.Chart{Name: "traefik", Repo: "https://traefik.github.io/charts", Version: "37.1.2"}

// DefaultNamespace is where Traefik runs unless Args say otherwise.
const DefaultNamespace = "ingress"

// Args configure the entry point.
type Args struct {
	// Namespace of Traefik (default "ingress").
	Namespace string
	// ChartMirror, when set, is where the chart comes from instead of its
	// public repository (upstream.Chart.Source).
	ChartMirror string
	// App and AppNamespace name the Service (owned by liftoff's rollouts) that receives traffic.
	App, AppNamespace string
	// Domain is the public host name; empty routes every host.
	Domain string
	// CertificateARN, with Domain, terminates TLS at the load balancer.
	CertificateARN string
	// Tags go on the load balancer, so teardown can find it by tag.
	Tags map[string]string
}

// Ingress is Traefik, its load balancer and the app's route.
type Ingress struct {
	pulumi.ResourceState
	// Hostname is the load balancer's DNS name.
	Hostname pulumi.StringOutput `pulumi:"hostname"`
	// URL is where the app answers.
	URL pulumi.StringOutput `pulumi:"url"`
}

// Values are Traefik's chart values for args.
func Values(args *Args) pulumi.Map {
	var tags []string
	for _, k := range slices.Sorted(maps.Keys(args.Tags)) {
		tags = append(tags, k+"="+args.Tags[k])
	}
	ann := pulumi.StringMap{
		"service.beta.kubernetes.io/aws-load-balancer-type":                              pulumi.String("nlb"),
		"service.beta.kubernetes.io/aws-load-balancer-scheme":                            pulumi.String("internet-facing"),
		"service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": pulumi.String("true"),
		"service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags":          pulumi.String(strings.Join(tags, ",")),
	}
	ports := pulumi.Map{}
	if args.CertificateARN != "" {
		ann["service.beta.kubernetes.io/aws-load-balancer-ssl-cert"] = pulumi.String(args.CertificateARN)
		ann["service.beta.kubernetes.io/aws-load-balancer-ssl-ports"] = pulumi.String("websecure")
		// The NLB terminates TLS and forwards plain HTTP; Traefik redirects port 80 to 443.
		ports["websecure"] = pulumi.Map{"tls": pulumi.Map{"enabled": pulumi.Bool(false)}}
		ports["web"] = pulumi.Map{"redirections": pulumi.Map{"entryPoint": pulumi.Map{"to": pulumi.String("websecure"), "scheme": pulumi.String("https"), "permanent": pulumi.Bool(true)}}}
	}
	return pulumi.Map{
		"deployment":          pulumi.Map{"replicas": pulumi.Int(2)},
		"podDisruptionBudget": pulumi.Map{"enabled": pulumi.Bool(true), "maxUnavailable": pulumi.Int(1)},
		"resources":           pulumi.Map{"requests": pulumi.Map{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")}, "limits": pulumi.Map{"memory": pulumi.String("256Mi")}},
		"service":             pulumi.Map{"annotations": ann, "spec": pulumi.Map{"externalTrafficPolicy": pulumi.String("Local")}},
		"ports":               ports,
		"ingressClass":        pulumi.Map{"enabled": pulumi.Bool(true), "isDefaultClass": pulumi.Bool(true), "name": pulumi.String("traefik")},
		"providers":           pulumi.Map{"kubernetesCRD": pulumi.Map{"enabled": pulumi.Bool(false)}, "kubernetesIngress": pulumi.Map{"enabled": pulumi.Bool(true), "publishedService": pulumi.Map{"enabled": pulumi.Bool(true)}}},
		"metrics":             pulumi.Map{"prometheus": pulumi.Map{"serviceMonitor": pulumi.Map{"enabled": pulumi.Bool(false)}}},
	}
}

// New declares Traefik and the app's Ingress; opts carry the Kubernetes provider.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Ingress, error) {
	if args == nil || args.App == "" || args.AppNamespace == "" {
		return nil, fmt.Errorf("ingress: app and its namespace are required")
	}
	if args.CertificateARN != "" && args.Domain == "" {
		return nil, fmt.Errorf("ingress: a certificate needs a domain to serve")
	}
	if args.Namespace == "" {
		args.Namespace = DefaultNamespace
	}
	in := &Ingress{}
	if err := ctx.RegisterComponentResource("liftoff:ingress:Ingress", name, in, opts...); err != nil {
		return nil, err
	}
	child := append([]pulumi.ResourceOption{pulumi.Parent(in)}, opts...)
	chart, repo := Traefik.Release(args.ChartMirror)
	rel, err := helmv3.NewRelease(ctx, name+"-traefik", &helmv3.ReleaseArgs{
		Name: pulumi.String("traefik"), Chart: chart, Version: pulumi.String(Traefik.Version),
		RepositoryOpts: repo,
		Namespace:      pulumi.String(args.Namespace), CreateNamespace: pulumi.Bool(true),
		Values: Values(args), Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(5),
	}, child...)
	if err != nil {
		return nil, err
	}
	rule := &networkingv1.IngressRuleArgs{Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{
		networkingv1.HTTPIngressPathArgs{Path: pulumi.String("/"), PathType: pulumi.String("Prefix"),
			Backend: &networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
				Name: pulumi.String(args.App), Port: &networkingv1.ServiceBackendPortArgs{Name: pulumi.String("http")}}}}}}}
	if args.Domain != "" {
		rule.Host = pulumi.String(args.Domain)
	}
	if _, err := networkingv1.NewIngress(ctx, name+"-app", &networkingv1.IngressArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(args.App), Namespace: pulumi.String(args.AppNamespace)},
		Spec:     &networkingv1.IngressSpecArgs{IngressClassName: pulumi.String("traefik"), Rules: networkingv1.IngressRuleArray{rule}},
	}, append(child, pulumi.DependsOn([]pulumi.Resource{rel}))...); err != nil {
		return nil, err
	}
	// Read back the load balancer's name once Traefik's Service has one.
	svc, err := corev1.GetService(ctx, name+"-lb", pulumi.ID(args.Namespace+"/traefik"), nil, append(child, pulumi.DependsOn([]pulumi.Resource{rel}))...)
	if err != nil {
		return nil, err
	}
	in.Hostname = svc.Status.LoadBalancer().Ingress().Index(pulumi.Int(0)).Hostname().Elem()
	switch {
	case args.Domain != "" && args.CertificateARN != "":
		in.URL = pulumi.Sprintf("https://%s", args.Domain)
	case args.Domain != "":
		in.URL = pulumi.Sprintf("http://%s", args.Domain)
	default:
		in.URL = pulumi.Sprintf("http://%s", in.Hostname)
	}
	return in, ctx.RegisterResourceOutputs(in, pulumi.Map{"hostname": in.Hostname, "url": in.URL})
}
