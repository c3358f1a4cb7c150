package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// PulumiVersion is the pulumi CLI version liftoff installs and is tested with.
const PulumiVersion = "3.259.0"

// FindCLI looks for the pulumi CLI: $LIFTOFF_PULUMI, then ~/.liftoff/bin, then PATH.
func FindCLI(home string, getenv func(string) string) (string, error) {
	if p := getenv("LIFTOFF_PULUMI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", failure.New(failure.Config, fmt.Errorf("LIFTOFF_PULUMI=%s: %w", p, err), "point LIFTOFF_PULUMI at a pulumi binary, or unset it")
		}
		return p, nil
	}
	if p := filepath.Join(home, "bin", "pulumi"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return p, nil
	}
	return "", failure.Newf(failure.Config,
		"run liftoff again on a connected machine to install v"+PulumiVersion+" into ~/.liftoff/bin, or build it offline with make tools",
		"pulumi CLI not found (looked at $LIFTOFF_PULUMI, %s, PATH)", filepath.Join(home, "bin", "pulumi"))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// commandAt wraps the CLI at path. The Automation API expects <root>/bin/pulumi,
// so a binary elsewhere gets a private bin directory with a symlink.
func commandAt(path string) (auto.PulumiCommand, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	root := filepath.Dir(filepath.Dir(abs))
	if filepath.Base(filepath.Dir(abs)) != "bin" || filepath.Base(abs) != "pulumi" {
		root, err = os.MkdirTemp("", "liftoff-pulumi")
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(root, "bin"), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(abs, filepath.Join(root, "bin", "pulumi")); err != nil {
			return nil, err
		}
	}
	return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: false})
}
