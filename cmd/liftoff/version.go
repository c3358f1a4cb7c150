package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
)

// NewCmdVersion prints liftoff's version and the versions it pins.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print liftoff's version and the tool versions it pins",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := map[string]any{
				"version": version, "commit": commit, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
				"pulumi": engine.PulumiVersion, "eks": config.DefaultEKSVersion, "k3s": config.DefaultK3sVersion,
			}
			text := fmt.Sprintf("liftoff %s", version)
			if commit != "" {
				text += " (" + commit + ")"
			}
			text += fmt.Sprintf("\n  %s %s\n  pulumi CLI v%s, EKS %s, k3s %s", runtime.Version(), data["platform"], engine.PulumiVersion, config.DefaultEKSVersion, config.DefaultK3sVersion)
			f.Printer().Result(text, data)
			return nil
		},
	}
}
