// Package incluster holds what every target's program declares inside a
// Kubernetes cluster once it has one: the app's namespace and Secret, the
// in-cluster registry, PostgreSQL, Valkey and observability, the registry
// pull Secret, the stack's outputs, and the ownership transformation. The
// programs in stacks/... compose it; it is no target's program itself.
package incluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/backup"
	"github.com/liftoff-dev/liftoff/components/cache"
	"github.com/liftoff-dev/liftoff/components/database"
	"github.com/liftoff-dev/liftoff/components/observability"
	"github.com/liftoff-dev/liftoff/components/registry"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// KubernetesPlugin is the resource plugin every program that declares
// Kubernetes objects loads, at the version of the SDK liftoff is built with.
var KubernetesPlugin = engine.PluginFor("kubernetes", "github.com/pulumi/pulumi-kubernetes/sdk/v4")

// Export records outs as the root component t's outputs and as the stack's
// outputs, which liftoff's phases read. Every target's program ends with it.
func Export(ctx *pulumi.Context, t pulumi.Resource, outs pulumi.Map) error {
	if err := ctx.RegisterResourceOutputs(t, outs); err != nil {
		return err
	}
	for k, v := range outs {
		ctx.Export(k, v)
	}
	return nil
}

// InCluster declares what the app needs inside a cluster reached through
// prov: its namespace and Secret, and whichever of registry, PostgreSQL,
// Valkey and observability the config runs in the cluster. It adds what the
// deploy phase reads to outs. The homelab target uses it on its k3s cluster.
func InCluster(ctx *pulumi.Context, t pulumi.Resource, prov *kubernetes.Provider, cfg *config.Stack, outs pulumi.Map) error {
	app, ns := cfg.App.Name, cfg.App.Namespace
	opts := []pulumi.ResourceOption{pulumi.Parent(t), pulumi.Provider(prov)}
	nsRes, err := corev1.NewNamespace(ctx, "app-namespace", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(ns), Labels: OwnerLabels(ctx)}}, opts...)
	if err != nil {
		return err
	}
	inNS := append(opts, pulumi.DependsOn([]pulumi.Resource{nsRes}))
	if err := AppData(ctx, cfg, cfg.StorageClass, inNS...); err != nil {
		return err
	}
	outs[outputs.AppSecretManaged] = pulumi.Bool(true)

	if cfg.Registry.Repository == "" {
		pw, err := Generated(cfg.Registry.Password, "liftoff:registryPassword")
		if err != nil {
			return err
		}
		reg, err := registry.NewInCluster(ctx, "registry", &registry.InClusterArgs{Namespace: ns, StorageClass: cfg.StorageClass,
			Image: cfg.Images.Registry, Password: pw, Blocks: cfg.Network.HostBlocks()}, inNS...)
		if err != nil {
			return err
		}
		pull, err := PullSecret(ctx, "registry-pull", ns, reg.Host, reg.Username, reg.Password, inNS...)
		if err != nil {
			return err
		}
		outs[outputs.Registry] = pulumi.Sprintf("%s/%s", reg.Host, app)
		outs[outputs.RegistryInsecure] = pulumi.Bool(true) // plain HTTP on localhost, as containerd allows
		outs[outputs.RegistryPortForward] = pulumi.Sprintf("%s/registry:5000", ns)
		outs[outputs.RegistryUsername] = reg.Username
		outs[outputs.RegistryPassword] = reg.Password
		outs[outputs.ImagePullSecret] = pull.Metadata.Name().Elem()
	}
	if cfg.Observability.Enabled {
		return Observability(ctx, cfg, cfg.StorageClass, outs, opts...)
	}
	return nil
}

// NetworkOutputs records the cluster's network as the config knows it
// (config.Network): the deploy phase writes the app's NetworkPolicy from
// it, and a preview's program its data services' policies.
func NetworkOutputs(n config.Network, outs pulumi.Map) {
	outs[outputs.PodCIDRs] = pulumi.String(strings.Join(n.PodCIDRs, ","))
	outs[outputs.HostCIDRs] = pulumi.String(strings.Join(n.HostCIDRs, ","))
	outs[outputs.IngressNamespaces] = pulumi.String(strings.Join(n.IngressNamespaces, ","))
}

// OwnerLabels mark what the program makes as this stack's (up refuses to
// adopt a namespace of another owner; destroy deletes only its own).
func OwnerLabels(ctx *pulumi.Context) pulumi.StringMap {
	return pulumi.ToStringMap(outputs.OwnerLabels(ctx.Project(), ctx.Stack()))
}

// AppData declares, in the app's namespace, PostgreSQL and Valkey when the
// config runs them in the cluster (volumes on storageClass), and the app's
// Secret with their URLs or the configured external ones. opts carry the
// provider and the namespace dependency.
func AppData(ctx *pulumi.Context, cfg *config.Stack, storageClass string, opts ...pulumi.ResourceOption) error {
	app, ns := cfg.App.Name, cfg.App.Namespace
	env, err := DataStores(ctx, cfg, storageClass, opts...)
	if err != nil {
		return err
	}
	sec, err := corev1.NewSecret(ctx, "app-env", &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(outputs.EnvSecret(app)), Namespace: pulumi.String(ns), Labels: pulumi.StringMap{outputs.LabelName: pulumi.String(app), outputs.LabelManagedBy: pulumi.String(outputs.ManagedBy)}},
		StringData: env,
	}, opts...)
	if err != nil {
		return err
	}
	return Backups(ctx, cfg, storageClass, append(opts, pulumi.DependsOn([]pulumi.Resource{sec}))...)
}

// Backups declares the database's scheduled backups in the app's
// namespace when the config schedules them (the app's Secret holds the
// database's URL, whichever kind it is).
func Backups(ctx *pulumi.Context, cfg *config.Stack, storageClass string, opts ...pulumi.ResourceOption) error {
	if cfg.Backup.Schedule == "" || cfg.Database.Mode == "" {
		return nil
	}
	_, err := backup.New(ctx, "backup", &backup.Args{Namespace: cfg.App.Namespace, App: cfg.App.Name, Project: ctx.Project(), Stack: ctx.Stack(),
		Image: cfg.Images.Postgres, Schedule: cfg.Backup.Schedule, Retain: cfg.Backup.Retain, Verify: cfg.Backup.Verify,
		URLSecret: outputs.EnvSecret(cfg.App.Name), DatabaseMode: cfg.Database.Mode, StorageClass: storageClass}, opts...)
	return err
}

// DataStores declares PostgreSQL and Valkey in the app's namespace when the
// config runs them in the cluster, and returns the app's DATABASE_URL and
// CACHE_URL for the in-cluster and external modes (the aws program adds RDS
// and ElastiCache itself).
func DataStores(ctx *pulumi.Context, cfg *config.Stack, storageClass string, opts ...pulumi.ResourceOption) (pulumi.StringMap, error) {
	ns := cfg.App.Namespace
	env := pulumi.StringMap{}
	switch cfg.Database.Mode {
	case "in-cluster":
		pw, err := Generated(cfg.Database.Password, "liftoff:databasePassword")
		if err != nil {
			return nil, err
		}
		db, err := database.NewInCluster(ctx, "database", &database.InClusterArgs{Namespace: ns, StorageClass: storageClass,
			Image: cfg.Images.Postgres, Password: pw}, opts...)
		if err != nil {
			return nil, err
		}
		env["DATABASE_URL"] = db.URL
	case "external":
		env["DATABASE_URL"] = pulumi.ToSecret(pulumi.String(cfg.Database.URL.Reveal())).(pulumi.StringOutput)
	}
	switch cfg.Cache.Mode {
	case "in-cluster":
		pw, err := Generated(cfg.Cache.Password, "liftoff:cachePassword")
		if err != nil {
			return nil, err
		}
		c, err := cache.NewInCluster(ctx, "cache", &cache.InClusterArgs{Namespace: ns, StorageClass: storageClass, Image: cfg.Images.Valkey, Password: pw}, opts...)
		if err != nil {
			return nil, err
		}
		env["CACHE_URL"] = c.URL
	case "external":
		env["CACHE_URL"] = pulumi.ToSecret(pulumi.String(cfg.Cache.URL.Reveal())).(pulumi.StringOutput)
	}
	return env, nil
}

// Generated is a secret liftoff generates (config.Missing) as a program
// input; a stack run by the plain pulumi CLI must have it set by hand.
func Generated(s config.Secret, key string) (pulumi.StringInput, error) {
	if !s.IsSet() {
		return nil, fmt.Errorf("%s is not set: liftoff up generates it (with the plain pulumi CLI: pulumi config set --secret %s \"$(head -c 64 /dev/urandom | tr -dc A-Za-z0-9 | head -c 32)\")", key, key)
	}
	return pulumi.ToSecret(pulumi.String(s.Reveal())).(pulumi.StringOutput), nil
}

// Observability declares the monitoring stack for cfg, volumes on
// storageClass, and adds how to reach it to outs. Every target uses it.
func Observability(ctx *pulumi.Context, cfg *config.Stack, storageClass string, outs pulumi.Map, opts ...pulumi.ResourceOption) error {
	var hook pulumi.StringInput
	if cfg.Observability.AlertWebhook.IsSet() {
		hook = pulumi.ToSecret(pulumi.String(cfg.Observability.AlertWebhook.Reveal())).(pulumi.StringOutput)
	}
	grafana, err := Generated(cfg.Observability.GrafanaPassword, "liftoff:grafanaPassword")
	if err != nil {
		return err
	}
	o, err := observability.New(ctx, "observability", &observability.Args{Retention: cfg.Observability.Retention, StorageClass: storageClass, GrafanaPassword: grafana, ChartMirror: cfg.ChartMirror,
		Images: cfg.Observability.Images, Off: cfg.Observability.Off,
		AlertWebhook: hook, AlertWebhookKind: observability.WebhookKind(cfg.Observability.AlertWebhook.Reveal())}, opts...)
	if err != nil {
		return err
	}
	outs[outputs.Grafana], outs[outputs.Prometheus], outs[outputs.Alertmanager] = o.GrafanaService, o.PrometheusService, o.AlertmanagerService
	outs[outputs.OTLPEndpoint], outs[outputs.GrafanaAdminPassword] = o.OTLPEndpoint, o.GrafanaAdminPassword
	return nil
}

// PullSecret writes a kubernetes.io/dockerconfigjson Secret for one registry.
func PullSecret(ctx *pulumi.Context, name, namespace string, host, user, password pulumi.StringOutput, opts ...pulumi.ResourceOption) (*corev1.Secret, error) {
	doc := pulumi.All(host, user, password).ApplyT(func(v []any) (string, error) {
		h, u, p := v[0].(string), v[1].(string), v[2].(string)
		b, err := json.Marshal(map[string]any{"auths": map[string]any{h: map[string]string{
			"username": u, "password": p, "auth": base64.StdEncoding.EncodeToString([]byte(u + ":" + p))}}})
		return string(b), err
	}).(pulumi.StringOutput)
	return corev1.NewSecret(ctx, name, &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String("registry-pull"), Namespace: pulumi.String(namespace)},
		Type:       pulumi.String("kubernetes.io/dockerconfigjson"),
		StringData: pulumi.StringMap{".dockerconfigjson": pulumi.ToSecret(doc).(pulumi.StringOutput)},
	}, opts...)
}

// ownAnnotation makes the provider take over a field another manager set
// (server-side apply with force): liftoff owns what it declares, so an
// object made by a run that was killed before recording it, or a field
// edited by hand, is applied over instead of failing with a field conflict.
const ownAnnotation = "pulumi.com/patchForce"

// TakeOwnership registers a transformation that puts ownAnnotation on every
// Kubernetes object the program declares; every target's program runs it first.
func TakeOwnership(ctx *pulumi.Context) error {
	return ctx.RegisterStackTransformation(func(args *pulumi.ResourceTransformationArgs) *pulumi.ResourceTransformationResult {
		if !strings.HasPrefix(args.Type, "kubernetes:") || strings.HasPrefix(args.Type, "kubernetes:helm.sh/") {
			return nil
		}
		props := reflect.ValueOf(args.Props)
		if props.Kind() != reflect.Pointer || props.Elem().Kind() != reflect.Struct {
			return nil
		}
		field := props.Elem().FieldByName("Metadata")
		if !field.IsValid() || field.IsNil() {
			return nil
		}
		meta, ok := field.Interface().(*metav1.ObjectMetaArgs)
		if !ok {
			return nil
		}
		ann := pulumi.StringMap{ownAnnotation: pulumi.String("true")}
		switch cur := meta.Annotations.(type) {
		case nil:
		case pulumi.StringMap:
			for k, v := range cur {
				ann[k] = v
			}
		default:
			return nil // computed annotations: left as they are
		}
		copied := *meta
		copied.Annotations = ann
		field.Set(reflect.ValueOf(&copied))
		return &pulumi.ResourceTransformationResult{Props: args.Props, Opts: args.Opts}
	})
}
