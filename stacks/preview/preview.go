// Package preview is the Pulumi program of a preview stack: a pull
// request's copy of the app on its parent stack's cluster. It takes what
// its parent hands it (cluster, registry, observability; see Program) and
// adds only what the preview owns: its namespace's
// database and cache when they run in the cluster, the app's Secret, a pull
// secret for the parent's registry and, when the parent names a preview
// domain, an Ingress at <stack>.<previewDomain>. With an external database,
// no cache and a registry without credentials it declares nothing, and
// liftoff's deploy phase writes the namespace and Secret.
package preview

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// Root is the preview's root component.
type Root struct {
	pulumi.ResourceState
}

// ParentRef is the StackReference name of a parent stack in the same
// project on a file or S3 backend.
func ParentRef(project, parent string) string {
	return fmt.Sprintf("organization/%s/%s", project, parent)
}

// parent is what the preview took from its parent.
type parent struct{ *target.Handoff }

func (p parent) output(key string) pulumi.Output {
	v := pulumi.ToOutput(p.Values[key])
	if p.Secret[key] {
		return pulumi.ToSecret(v)
	}
	return v
}

// Program declares the preview stack from what its parent handed it
// (liftoff reads that before the run, with the preview's own credentials
// in place of the parent's secrets where it has them). Without a hand-off
// (the plain pulumi CLI) it reads the parent through a StackReference,
// which needs the parent's passphrase.
func Program(ctx *pulumi.Context, cfg *config.Stack, h *target.Handoff) error {
	t := &Root{}
	if err := ctx.RegisterComponentResource("liftoff:preview:Target", ctx.Stack(), t); err != nil {
		return err
	}
	of := cfg.Preview.Of
	if h == nil {
		var err error
		if h, err = readParent(ctx, t, of); err != nil {
			return err
		}
	}
	p := parent{h}
	if p.Str("target") == "" {
		return fmt.Errorf("parent stack %s has no outputs: stand it up first (liftoff up -s %s)", of, of)
	}
	if p.Str("kubeconfig") == "" && p.Str("kubeconfigContent") == "" {
		return fmt.Errorf("parent stack %s records no way to reach its cluster (no kubeconfig output)", of)
	}

	app, ns := cfg.App.Name, cfg.App.Namespace
	outs := pulumi.Map{
		outputs.Target: pulumi.String(p.Str("target")), outputs.PreviewOf: pulumi.String(of), outputs.App: pulumi.String(app), outputs.Namespace: pulumi.String(ns),
		outputs.Database: pulumi.String(cfg.Database.Mode), outputs.Cache: pulumi.String(cfg.Cache.Mode),
		outputs.AppSecretName: pulumi.String(outputs.EnvSecret(app)), outputs.AppSecretManaged: pulumi.Bool(false),
	}
	for _, key := range outputs.PreviewInherits {
		if _, ok := p.Values[key]; ok {
			outs[key] = p.output(key)
		}
	}
	host := ""
	if d := p.Str("previewDomain"); d != "" {
		host = ctx.Stack() + "." + d
	}
	if cfg.App.Domain != "" {
		host = cfg.App.Domain
	}
	needs := cfg.Database.Mode == "in-cluster" || cfg.Cache.Mode == "in-cluster" || p.Str("registryUsername") != "" || host != ""
	if !needs {
		return incluster.Export(ctx, t, outs)
	}

	var kc pulumi.StringInput = pulumi.String(p.Str("kubeconfig")) // a path
	if c := p.Str("kubeconfigContent"); c != "" {
		kc = pulumi.ToSecret(pulumi.String(c)).(pulumi.StringOutput)
	}
	prov, err := kube.NewProvider(ctx, "parent-cluster", &kubernetes.ProviderArgs{Kubeconfig: kc, Context: pulumi.String(p.Str("context"))}, pulumi.Parent(t))
	if err != nil {
		return err
	}
	opts := []pulumi.ResourceOption{pulumi.Parent(t), pulumi.Provider(prov)}
	nsRes, err := corev1.NewNamespace(ctx, "app-namespace", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(ns), Labels: pulumi.ToStringMap(previewLabels(ctx, of))}}, opts...)
	if err != nil {
		return err
	}
	inNS := append(opts, pulumi.DependsOn([]pulumi.Resource{nsRes}))
	if err := incluster.AppData(ctx, cfg, p.Str("storageClass"), inNS...); err != nil {
		return err
	}
	outs[outputs.AppSecretManaged] = pulumi.Bool(true)

	if user := p.Str("registryUsername"); user != "" {
		reg := strings.SplitN(p.Str("registry"), "/", 2)[0]
		pull, err := incluster.PullSecret(ctx, "registry-pull", ns, pulumi.String(reg).ToStringOutput(), pulumi.String(user).ToStringOutput(),
			pulumi.ToSecret(pulumi.String(p.Str("registryPassword"))).(pulumi.StringOutput), inNS...)
		if err != nil {
			return err
		}
		outs[outputs.ImagePullSecret] = pull.Metadata.Name().Elem()
	}
	if host != "" {
		var class pulumi.StringPtrInput
		if c := p.Str("ingressClass"); c != "" {
			class = pulumi.String(c)
		}
		if _, err := networkingv1.NewIngress(ctx, "app-ingress", &networkingv1.IngressArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(app), Namespace: pulumi.String(ns)},
			Spec: &networkingv1.IngressSpecArgs{IngressClassName: class, Rules: networkingv1.IngressRuleArray{&networkingv1.IngressRuleArgs{
				Host: pulumi.String(host),
				Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: networkingv1.HTTPIngressPathArray{networkingv1.HTTPIngressPathArgs{
					Path: pulumi.String("/"), PathType: pulumi.String("Prefix"),
					Backend: &networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
						Name: pulumi.String(app), Port: &networkingv1.ServiceBackendPortArgs{Name: pulumi.String("http")}}}}}},
			}}},
		}, inNS...); err != nil {
			return err
		}
		scheme := "http"
		if strings.HasPrefix(p.Str("url"), "https://") {
			scheme = "https" // the parent terminates TLS: its certificate must cover *.previewDomain
		}
		outs[outputs.URL] = pulumi.String(scheme + "://" + host)
	}
	return incluster.Export(ctx, t, outs)
}

// readParent reads the parent's outputs through a StackReference.
func readParent(ctx *pulumi.Context, t *Root, of string) (*target.Handoff, error) {
	ref, err := pulumi.NewStackReference(ctx, "parent", &pulumi.StackReferenceArgs{Name: pulumi.String(ParentRef(ctx.Project(), of))}, pulumi.Parent(t))
	if err != nil {
		return nil, err
	}
	h := &target.Handoff{Parent: of, Values: map[string]any{}, Secret: map[string]bool{}}
	for _, key := range outputs.PreviewReads {
		d, err := ref.GetOutputDetails(key)
		if err != nil {
			return nil, fmt.Errorf("read output %s of parent stack %s: %w", key, of, err)
		}
		switch {
		case d.SecretValue != nil:
			h.Values[key], h.Secret[key] = d.SecretValue, true
		case d.Value != nil:
			h.Values[key] = d.Value
		}
	}
	return h, nil
}

// previewLabels mark a preview's namespace as its stack's, and name its parent.
func previewLabels(ctx *pulumi.Context, parent string) map[string]string {
	l := outputs.OwnerLabels(ctx.Project(), ctx.Stack())
	l[outputs.LabelPreviewOf] = parent
	return l
}
