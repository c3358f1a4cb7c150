package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/cost"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// PreviewOptions are the flags of `liftoff preview`.
type PreviewOptions struct {
	f *Factory
}

// NewCmdPreview shows what `up` would change.
func NewCmdPreview(f *Factory, runF func(*PreviewOptions) error) *cobra.Command {
	o := &PreviewOptions{f: f}
	return &cobra.Command{
		Use:   "preview",
		Short: "Show what up would change, without changing anything",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runPreview(cmd.Context(), o)
		},
	}
}

func runPreview(ctx context.Context, o *PreviewOptions) error {
	f := o.f
	cfg, err := f.StackConfig()
	if err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, cfg, "liftoff preview", 0)
	if err != nil {
		return err
	}
	changes, err := launch.Preview(ctx, d, cfg)
	if err != nil {
		return err
	}
	ops := make([]string, 0, len(changes))
	data := map[string]any{}
	for op, n := range changes {
		ops = append(ops, fmt.Sprintf("%d to %s", n, op))
		data[op] = n
	}
	sort.Strings(ops)
	text := "no changes"
	if changes.HasChanges() {
		text = "changes: " + strings.Join(ops, ", ")
	}
	result := map[string]any{"stack": cfg.Name, "changes": data}
	if est := cost.AWS(cfg); est != nil {
		text += "\n" + est.String()
		result["cost"] = est
	}
	f.Printer().Result(text, result)
	return nil
}
