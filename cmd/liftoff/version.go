package main

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/engine"
)

// NewCmdVersion prints liftoff's version and the versions it pins.
func NewCmdVersion(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print liftoff's version and the tool versions it pins",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := versionResult{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
				Pulumi: engine.PulumiVersion, Pins: targetPins(f.targets())}
			pins := []string{"pulumi CLI v" + engine.PulumiVersion}
			for _, k := range sortedKeys(data.Pins) {
				pins = append(pins, strings.ToUpper(k)+" "+data.Pins[k])
			}
			text := fmt.Sprintf("liftoff %s", version)
			if commit != "" {
				text += " (" + commit + ")"
			}
			text += fmt.Sprintf("\n  %s %s\n  %s", runtime.Version(), data.Platform, strings.Join(pins, ", "))
			f.Printer().Result(text, data)
			return nil
		},
	}
}

// versionResult is liftoff's version and the versions it pins: the pulumi
// CLI, and each target's (EKS, k3s) by what they version.
type versionResult struct {
	Version  string            `json:"version"`
	Commit   string            `json:"commit"`
	Go       string            `json:"go"`
	Platform string            `json:"platform"`
	Pulumi   string            `json:"pulumi"`
	Pins     map[string]string `json:"pins"`
}
