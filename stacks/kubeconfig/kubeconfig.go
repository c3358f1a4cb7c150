// Package kubeconfig is the Pulumi program of the kubeconfig target: a cluster
// the user already has. It declares only what the config asks liftoff to run
// in the cluster; with an external registry and database and observability
// off, it declares no provider resources at all and still records the
// stack's outputs through the engine.
package kubeconfig

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
)

// Target is the stack's root component: the existing cluster liftoff deploys into.
type Target struct {
	pulumi.ResourceState
}

// Program declares the kubeconfig stack.
func Program(ctx *pulumi.Context, cfg *config.Stack) error {
	t := &Target{}
	if err := ctx.RegisterComponentResource("liftoff:kubeconfig:Target", ctx.Stack(), t); err != nil {
		return err
	}
	outs := pulumi.Map{
		"target":     pulumi.String(string(cfg.Target)),
		"app":        pulumi.String(cfg.App.Name),
		"namespace":  pulumi.String(cfg.App.Namespace),
		"kubeconfig": pulumi.String(cfg.Kubeconfig.Path),
		"context":    pulumi.String(cfg.Kubeconfig.Context),
		"registry":   pulumi.String(cfg.Registry.Repository),
		"database":   pulumi.String(cfg.Database.Mode),
	}
	if err := ctx.RegisterResourceOutputs(t, outs); err != nil {
		return err
	}
	for k, v := range outs {
		ctx.Export(k, v)
	}
	return nil
}
