package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/launch"
)

// StacksGCOptions are the flags of `liftoff stacks gc`.
type StacksGCOptions struct {
	f      *Factory
	DryRun bool
	Force  bool
}

// NewCmdStacksGC destroys expired preview stacks.
func NewCmdStacksGC(f *Factory, runF func(*StacksGCOptions) error) *cobra.Command {
	o := &StacksGCOptions{f: f}
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Destroy preview stacks whose TTL has passed (releases, namespace, resources, state)",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runStacksGC(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "list the expired previews without destroying them")
	cmd.Flags().BoolVar(&o.Force, "force", false, "carry on when a preview's cluster can no longer be reached")
	return cmd
}

func runStacksGC(ctx context.Context, o *StacksGCOptions) error {
	f := o.f
	d, err := f.LaunchDeps(ctx, "liftoff stacks gc", 0)
	if err != nil {
		return err
	}
	res, err := launch.GC(ctx, d, launch.GCOptions{DryRun: o.DryRun, Force: o.Force,
		KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()),
		Config:  f.teardownConfig,
		Confirm: func(what []string) error { return f.Confirm("destroy " + strings.Join(what, ", ")) },
	})
	if res == nil {
		return err
	}
	switch {
	case o.DryRun || len(res.Expired) == 0:
		text := "no expired previews"
		if len(res.Expired) > 0 {
			text = "would destroy:\n  " + strings.Join(res.Describe(), "\n  ")
		}
		f.Printer().Result(text, res)
	case res.Removed != nil || res.Failed != nil:
		f.Printer().Result(fmt.Sprintf("removed %d expired preview(s): %s", len(res.Removed), strings.Join(res.Removed, ", ")), res)
	}
	return err
}
