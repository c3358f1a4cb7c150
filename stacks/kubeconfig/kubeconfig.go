// Package kubeconfig is the Pulumi program of the kubeconfig target: a cluster
// the user already has. It declares only what the config asks liftoff to run
// in the cluster: a registry, PostgreSQL, Valkey, observability. With an
// external registry and database, no cache and observability off, it
// declares no provider resources at all, and liftoff's deploy phase writes
// the app's namespace and Secret; the stack still records its outputs
// through the engine, like every other target.
package kubeconfig

import (
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/components/metricsserver"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// Root is the stack's root component: the existing cluster liftoff deploys into.
type Root struct {
	pulumi.ResourceState
}

// NeedsProvider reports whether the config asks for anything in the cluster.
func NeedsProvider(cfg *config.Stack) bool { return inCluster(cfg) || wantsMetricsServer(cfg) }

// inCluster: the config runs some of the app's services in the cluster, so
// the program declares the app's namespace and Secret too.
func inCluster(cfg *config.Stack) bool {
	return cfg.Observability.Enabled || cfg.Registry.Repository == "" || cfg.Database.Mode == "in-cluster" || cfg.Cache.Mode == "in-cluster"
}

// wantsMetricsServer: the stack autoscales and may install metrics-server
// (whether the cluster already has a metrics API, preflight finds out).
func wantsMetricsServer(cfg *config.Stack) bool {
	return settings(cfg).MetricsServer.Wanted(cfg)
}

// Program declares the kubeconfig stack; facts say whether the cluster
// needs liftoff's metrics-server.
func Program(ctx *pulumi.Context, cfg *config.Stack, facts target.Facts) error {
	t := &Root{}
	if err := ctx.RegisterComponentResource("liftoff:kubeconfig:Target", ctx.Stack(), t); err != nil {
		return err
	}
	app, ns := cfg.App.Name, cfg.App.Namespace
	outs := pulumi.Map{
		outputs.Target: pulumi.String(string(cfg.Target)), outputs.App: pulumi.String(app), outputs.Namespace: pulumi.String(ns),
		outputs.Kubeconfig: pulumi.String(settings(cfg).Path), outputs.Context: pulumi.String(settings(cfg).Context),
		outputs.Database: pulumi.String(cfg.Database.Mode), outputs.Cache: pulumi.String(cfg.Cache.Mode),
		outputs.Registry: pulumi.String(cfg.Registry.Repository), outputs.RegistryInsecure: pulumi.Bool(cfg.Registry.Insecure),
		outputs.AppSecretName: pulumi.String(outputs.EnvSecret(app)), outputs.AppSecretManaged: pulumi.Bool(false),
		outputs.StorageClass: pulumi.String(cfg.StorageClass), outputs.PreviewDomain: pulumi.String(cfg.PreviewDomain),
	}
	incluster.NetworkOutputs(cfg.Network, outs)
	if !inCluster(cfg) && !facts.MetricsServer {
		return incluster.Export(ctx, t, outs)
	}
	prov, err := kube.NewProvider(ctx, "cluster", &kubernetes.ProviderArgs{
		Kubeconfig: pulumi.String(settings(cfg).Path), Context: pulumi.String(settings(cfg).Context),
	}, pulumi.Parent(t))
	if err != nil {
		return err
	}
	if inCluster(cfg) {
		if err := incluster.InCluster(ctx, t, prov, cfg, outs); err != nil {
			return err
		}
	}
	// In kube-system, where clusters run theirs: never in the app's
	// namespace, whose owner (this program or the deploy phase) must not
	// change when autoscaling is turned on or off.
	if facts.MetricsServer {
		if _, err := metricsserver.New(ctx, "metrics-server", &metricsserver.Args{Namespace: metricsserver.Namespace, Image: settings(cfg).MetricsServer.Image,
			Labels: incluster.OwnerLabels(ctx)}, pulumi.Parent(t), pulumi.Provider(prov)); err != nil {
			return err
		}
	}
	return incluster.Export(ctx, t, outs)
}
