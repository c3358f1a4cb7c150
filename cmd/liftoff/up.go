package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/stacks"
)

// UpOptions are the flags of `liftoff up`.
type UpOptions struct {
	f         *Factory
	LockWait  time.Duration
	SkipInfra bool
	InfraOnly bool
}

// NewCmdUp stands a stack up.
func NewCmdUp(f *Factory, runF func(*UpOptions) error) *cobra.Command {
	o := &UpOptions{f: f}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create or update the stack's infrastructure, then ship the app",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.SkipInfra && o.InfraOnly {
				return failure.Newf(failure.Config, "pass one of them", "--skip-infra and --infra-only exclude each other")
			}
			if runF != nil {
				return runF(o)
			}
			return runUp(cmd.Context(), o)
		},
	}
	cmd.Flags().DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another run on the stack to finish (e.g. 5m)")
	cmd.Flags().BoolVar(&o.SkipInfra, "skip-infra", false, "ship the app only, using the infrastructure already recorded")
	cmd.Flags().BoolVar(&o.InfraOnly, "infra-only", false, "stop after the infrastructure phase")
	return cmd
}

func runUp(ctx context.Context, o *UpOptions) error {
	f := o.f
	cfg, err := f.StackConfig()
	if err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, cfg, "liftoff up", o.LockWait)
	if err != nil {
		return err
	}
	res, err := launch.Up(ctx, d, launch.UpOptions{Config: cfg, SkipInfra: o.SkipInfra, InfraOnly: o.InfraOnly})
	if res != nil {
		f.Printer().Summary(fmt.Sprintf("Stack %s is up", cfg.Name), res.Outputs, map[string]any{"stack": cfg.Name, "phases": res.Phases})
	}
	return err
}

// LaunchDeps wires the engine, printer, programs and stack lock for cfg.
func (f *Factory) LaunchDeps(ctx context.Context, cfg *config.Stack, command string, lockWait time.Duration) (launch.Deps, error) {
	eng, err := f.Engine(ctx)
	if err != nil {
		return launch.Deps{}, err
	}
	return launch.Deps{
		Engine: eng, Printer: f.Printer(), Program: stacks.Program, Now: f.Now,
		Lock: func(ctx context.Context) (func(), error) {
			l, err := f.Lock(ctx, eng.Project(), cfg.Name, command, lockWait)
			if err != nil {
				return nil, err
			}
			return func() {
				if err := l.Release(); err != nil {
					f.Printer().Warnf("release lock: %v", err)
				}
			}, nil
		},
	}, nil
}
