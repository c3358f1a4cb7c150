package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
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
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	list, err := eng.ListStacks(ctx)
	if err != nil {
		return err
	}
	expired := launch.Expired(list, f.Now())
	var names []string
	for _, s := range expired {
		names = append(names, fmt.Sprintf("%s (preview of %s, expired %s)", s.Name, s.Tags[launch.TagPreviewOf], s.Tags[launch.TagExpires]))
	}
	if o.DryRun || len(expired) == 0 {
		text := "no expired previews"
		if len(expired) > 0 {
			text = "would destroy:\n  " + strings.Join(names, "\n  ")
		}
		f.Printer().Result(text, map[string]any{"expired": expired, "dry_run": o.DryRun})
		return nil
	}
	if err := f.Confirm("destroy " + strings.Join(names, ", ")); err != nil {
		return err
	}
	var removed, failed []string
	receipts := map[string]*launch.DestroyResult{}
	for _, s := range expired {
		if err := ctx.Err(); err != nil {
			return failure.New(failure.Interrupted, err, "run liftoff stacks gc again")
		}
		res, err := gcOne(ctx, f, s.Name, o.Force)
		if res != nil {
			receipts[s.Name] = res
		}
		if err != nil {
			f.Printer().Warnf("%s: %v", s.Name, err)
			if res != nil {
				f.Printer().Warnf("%s: %s", s.Name, res.Receipt.Text())
			}
			failed = append(failed, s.Name)
			continue
		}
		removed = append(removed, s.Name)
	}
	f.Printer().Result(fmt.Sprintf("removed %d expired preview(s): %s", len(removed), strings.Join(removed, ", ")),
		map[string]any{"removed": removed, "failed": failed, "receipts": receipts})
	if len(failed) > 0 {
		return failure.Newf(failure.Engine, "see the warnings; rerun liftoff stacks gc (or --force when a cluster is gone)", "could not destroy %s", strings.Join(failed, ", "))
	}
	return nil
}

// gcOne destroys one preview as `liftoff destroy --stack NAME` would.
func gcOne(ctx context.Context, f *Factory, name string, force bool) (*launch.DestroyResult, error) {
	sf := &Factory{IO: f.IO, Getenv: f.Getenv, Now: f.Now, Heartbeat: f.Heartbeat, Global: f.Global}
	sf.Global.Stack = name
	sf.printerOnce.Do(func() { sf.printer = f.Printer() }) // one writer to stdout
	cfg, err := sf.TeardownConfig(ctx)
	if err != nil {
		return nil, err
	}
	d, err := sf.LaunchDeps(ctx, cfg, "liftoff stacks gc", 0)
	if err != nil {
		return nil, err
	}
	return launch.Destroy(ctx, d, launch.DestroyOptions{Config: cfg, KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()),
		Self: lock.Self("liftoff stacks gc", f.Getenv, f.Now()), Force: force})
}
