// Package stacks holds liftoff's Pulumi programs, one per target, and Run,
// which reads the typed config and dispatches by liftoff:target. The CLI runs
// Run inline through the Automation API; Pulumi.yaml runs the same Run through
// cmd/program for users of the plain pulumi CLI.
package stacks

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/stacks/aws"
	"github.com/liftoff-dev/liftoff/stacks/homelab"
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
// preview program on its parent's cluster, whatever the target.
func Program(cfg *config.Stack) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
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
