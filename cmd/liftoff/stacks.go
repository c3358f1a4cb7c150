package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/engine"
)

// NewCmdStacks groups the commands over all of a project's stacks.
func NewCmdStacks(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stacks",
		Short: "List stacks and collect expired previews",
	}
	cmd.AddCommand(NewCmdStacksLs(f, nil), NewCmdStacksGC(f, nil))
	return cmd
}

// StacksLsOptions are the flags of `liftoff stacks ls`.
type StacksLsOptions struct {
	f *Factory
}

// NewCmdStacksLs lists the project's stacks.
func NewCmdStacksLs(f *Factory, runF func(*StacksLsOptions) error) *cobra.Command {
	o := &StacksLsOptions{f: f}
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the project's stacks in the backend",
		Args:    exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runStacksLs(cmd.Context(), o)
		},
	}
}

func runStacksLs(ctx context.Context, o *StacksLsOptions) error {
	f := o.f
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	list, err := eng.ListStacks(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tLAST UPDATE\tRESOURCES\tPREVIEW OF\tEXPIRES")
	for _, s := range list {
		updated := "never"
		if !s.LastUpdate.IsZero() {
			updated = s.LastUpdate.Local().Format(time.DateTime)
		}
		if s.UpdateInProgress {
			updated += " (in progress)"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", s.Name, updated, s.Resources, orDash(s.Tags["liftoff:preview-of"]), orDash(s.Tags["liftoff:expires"]))
	}
	w.Flush()
	f.Printer().Result(b.String(), struct {
		Stacks []engine.StackSummary `json:"stacks"`
	}{list})
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
