package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/doctor"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// DoctorOptions are the flags of `liftoff doctor`.
type DoctorOptions struct {
	f *Factory
}

// NewCmdDoctor reports what is present and what is missing.
func NewCmdDoctor(f *Factory, runF func(*DoctorOptions) error) *cobra.Command {
	o := &DoctorOptions{f: f}
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check this machine for what liftoff needs, with the fix for anything missing",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runDoctor(cmd.Context(), o)
		},
	}
}

func runDoctor(ctx context.Context, o *DoctorOptions) error {
	f := o.f
	env := doctor.Env{Dir: f.Dir(), Home: f.Home(), Backend: f.Backend(), Getenv: f.Getenv}
	if name, err := f.StackName(); err == nil {
		if cfg, err := f.StackConfig(); err == nil {
			if tg, err := f.targets().For(cfg); err == nil {
				env.Stack, env.Plugins = name, tg.Plugins(cfg)
			}
		}
	}
	rs := doctor.Run(ctx, env)
	var b strings.Builder
	for _, r := range rs {
		mark := map[string]string{doctor.OK: "✓", doctor.Warn: "!", doctor.Fail: "✗"}[r.Status]
		fmt.Fprintf(&b, "%s %-34s %s\n", mark, r.Name, r.Detail)
		if r.Fix != "" {
			fmt.Fprintf(&b, "  %-34s fix: %s\n", "", r.Fix)
		}
	}
	f.Printer().Result(b.String(), struct {
		Checks []doctor.Result `json:"checks"`
	}{rs})
	if doctor.Failed(rs) {
		return failure.Newf(failure.Config, "apply the fixes above", "doctor found problems")
	}
	return nil
}
