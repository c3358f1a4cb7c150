// Package stacks holds liftoff's Pulumi programs, one per target, and Run,
// which reads the typed config and dispatches by liftoff:target. The CLI runs
// Run inline through the Automation API; Pulumi.yaml runs the same Run through
// cmd/program for users of the plain pulumi CLI.
package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/stacks/aws"
	"github.com/liftoff-dev/liftoff/stacks/homelab"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
	"github.com/liftoff-dev/liftoff/stacks/kubeconfig"
	"github.com/liftoff-dev/liftoff/stacks/preview"
)

// Run is the Pulumi program of every liftoff stack.
func Run(ctx *pulumi.Context) error {
	cfg, err := config.Parse(ctx.Stack(), Values(ctx))
	if err != nil {
		return err
	}
	return Program(cfg)(ctx)
}

// Program returns the program of cfg's target; every preview stack runs the
// preview program on its parent's cluster, whatever the target. A program the
// engine runs reads the stack's config again from the engine, which hands it
// over with the secrets decrypted (cfg, parsed from the stack file, holds no
// secret's plaintext, nor a value liftoff generated just before the run);
// cfg's run-time facts (the host keys preflight verified) carry over.
func Program(cfg *config.Stack) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if vals := Values(ctx); len(vals) > 0 {
			full, err := config.Parse(ctx.Stack(), vals)
			if err != nil {
				return err
			}
			if cfg.Homelab != nil && full.Homelab != nil {
				full.Homelab.HostKeys = cfg.Homelab.HostKeys
			}
			cfg = full
		}
		if err := incluster.TakeOwnership(ctx); err != nil {
			return err
		}
		if cfg.Preview != nil {
			return preview.Program(ctx, cfg)
		}
		switch cfg.Target {
		case config.AWS:
			return aws.Program(ctx, cfg)
		case config.Homelab:
			return homelab.Program(ctx, cfg)
		case config.Kubeconfig:
			return kubeconfig.Program(ctx, cfg)
		}
		return fmt.Errorf("unknown target %q", cfg.Target)
	}
}

// The resource plugins the programs load, at the versions of the SDKs liftoff is built with.
var (
	kubernetesPlugin = engine.PluginFor("kubernetes", "github.com/pulumi/pulumi-kubernetes/sdk/v4")
	awsPlugin        = engine.PluginFor("aws", "github.com/pulumi/pulumi-aws/sdk/v6")
	commandPlugin    = engine.PluginFor("command", "github.com/pulumi/pulumi-command/sdk")
)

// Plugins lists the resource plugins cfg's program is sure to load. (A
// preview with external stores also loads the Kubernetes one when its
// parent has an in-cluster registry or a preview domain.)
func Plugins(cfg *config.Stack) []engine.Plugin {
	switch {
	case cfg.Preview != nil:
		if cfg.Database.Mode == "in-cluster" || cfg.Cache.Mode == "in-cluster" {
			return []engine.Plugin{kubernetesPlugin}
		}
	case cfg.Target == config.AWS:
		return []engine.Plugin{awsPlugin, kubernetesPlugin}
	case cfg.Target == config.Homelab:
		return []engine.Plugin{commandPlugin, kubernetesPlugin}
	case cfg.Target == config.Kubeconfig:
		if kubeconfig.NeedsProvider(cfg) {
			return []engine.Plugin{kubernetesPlugin}
		}
	}
	return nil
}

// Values reads every key liftoff knows from the program's config, secrets decrypted.
func Values(ctx *pulumi.Context) config.Values {
	v := config.Values{}
	for _, k := range config.Keys {
		if s, ok := ctx.GetConfig(k.Name); ok {
			v[k.Name] = config.Value{Text: s, Secret: ctx.IsConfigSecret(k.Name), Known: true}
		}
	}
	return v
}
