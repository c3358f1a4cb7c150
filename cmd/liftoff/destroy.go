package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/launch"
)

// DestroyOptions are the flags of `liftoff destroy`.
type DestroyOptions struct {
	f         *Factory
	LockWait  time.Duration
	KeepState bool
	Force     bool
	Wait      time.Duration
}

// NewCmdDestroy deletes a stack.
func NewCmdDestroy(f *Factory, runF func(*DestroyOptions) error) *cobra.Command {
	o := &DestroyOptions{f: f}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete everything the stack created, then the stack's state",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runDestroy(cmd.Context(), o)
		},
	}
	cmd.Flags().DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another run on the stack to finish")
	cmd.Flags().BoolVar(&o.KeepState, "keep-state", false, "keep the empty stack (config and history) in the backend")
	cmd.Flags().BoolVar(&o.Force, "force", false, "carry on when the cluster is gone, and remove the state even when something is left")
	cmd.Flags().DurationVar(&o.Wait, "wait", 10*time.Minute, "how long to wait for load balancers, volumes and tagged leftovers to go before reporting them as left")
	return cmd
}

func runDestroy(ctx context.Context, o *DestroyOptions) error {
	f := o.f
	cfg, err := f.TeardownConfig(ctx)
	if err != nil {
		return err
	}
	if err := f.Confirm(fmt.Sprintf("destroy every resource of stack %s", cfg.Name)); err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, "liftoff destroy", o.LockWait)
	if err != nil {
		return err
	}
	res, err := launch.Destroy(ctx, d, launch.DestroyOptions{Config: cfg, KeepState: o.KeepState,
		KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()), Force: o.Force, SweepWait: o.Wait})
	if res != nil {
		printReceipt(f, res, err)
	}
	return err
}

// printReceipt is destroy's last word, also when it failed: what was
// removed, what is left and why, and whether the state went.
func printReceipt(f *Factory, res *launch.DestroyResult, err error) {
	text := fmt.Sprintf("stack %s destroyed", res.Stack)
	switch {
	case err != nil:
		text = fmt.Sprintf("stack %s NOT fully destroyed", res.Stack)
	case res.StateRemoved:
		text += " and removed from the backend"
	}
	f.Printer().Result(text+"\n"+res.Receipt.Text(), res)
}
