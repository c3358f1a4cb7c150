package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/launch"
)

// PreviewOptions are the flags of `liftoff preview`.
type PreviewOptions struct {
	f *Factory
	// Refresh reads every resource's live state first, so changes made by
	// hand show in the plan.
	Refresh bool
}

// NewCmdPreview shows what `up` would change.
func NewCmdPreview(f *Factory, runF func(*PreviewOptions) error) *cobra.Command {
	o := &PreviewOptions{f: f}
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Show what up would change, without changing anything",
		Long: `Preview plans the stack's program against what is running: it first reads
the live state of every resource (--refresh=false skips that), so an object
changed or deleted by hand shows as the change up would make to repair it.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runPreview(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Refresh, "refresh", true, "read the live state first, so drift shows")
	return cmd
}

func runPreview(ctx context.Context, o *PreviewOptions) error {
	f := o.f
	cfg, err := f.StackConfig()
	if err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, "liftoff preview", 0)
	if err != nil {
		return err
	}
	res, err := launch.Preview(ctx, d, cfg, o.Refresh)
	if err != nil {
		return err
	}
	ops := make([]string, 0, len(res.Changes))
	for op, n := range res.Changes {
		ops = append(ops, fmt.Sprintf("%d to %s", n, op))
	}
	sort.Strings(ops)
	text := "no changes"
	if res.Changes.HasChanges() {
		text = "changes: " + strings.Join(ops, ", ")
		for _, s := range res.Steps {
			if s.Op != "refresh" {
				text += fmt.Sprintf("\n  %-8s %s %s", s.Op, s.Type, s.Name)
			}
		}
	}
	if res.Cost != nil {
		text += "\n" + res.Cost.String()
	}
	f.Printer().Result(text, res)
	return nil
}
