package preview

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// Target serves every preview stack, whatever its parent's target: a
// namespace on the parent's cluster, so teardown sweeps only that namespace.
type Target struct{ target.Base }

func (Target) Name() string { return "preview" }

// Config: a preview is no liftoff:target value; liftoff:previewOf chooses it.
func (Target) Config() config.TargetSpec { return config.TargetSpec{Name: "preview"} }

func (Target) Program(ctx *pulumi.Context, cfg *config.Stack, facts target.Facts) error {
	return Program(ctx, cfg, facts.Parent)
}

// Plugins: the Kubernetes one when the preview runs its own data stores.
// (One with external stores also loads it when its parent has an
// in-cluster registry or a preview domain, which only the parent's
// outputs tell, and the engine then finds it where the parent's run did.)
func (Target) Plugins(cfg *config.Stack) []engine.Plugin {
	if cfg.Database.Mode == "in-cluster" || cfg.Cache.Mode == "in-cluster" {
		return []engine.Plugin{incluster.KubernetesPlugin}
	}
	return nil
}
