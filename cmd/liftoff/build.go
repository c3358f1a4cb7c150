package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/image"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// BuildOptions are the flags of `liftoff build`.
type BuildOptions struct {
	f                *Factory
	Package          string
	Platforms        []string
	BaseImage        string
	Repo             string
	InsecureRegistry bool
	OCILayout        string
}

// NewCmdBuild builds the app image without a Docker daemon and pushes it.
func NewCmdBuild(f *Factory, runF func(*BuildOptions) error) *cobra.Command {
	o := &BuildOptions{f: f}
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build the app's image without Docker (multi-arch, reproducible, with SBOM) and push it",
		Long: `Build compiles the Go main package for each platform, assembles an OCI image
(scratch base with CA roots and a nonroot user, or --base-image), attaches an
SPDX SBOM, and pushes to --repo (or the stack's liftoff:registry). The pushed
reference, repo@sha256:..., is printed on stdout.`,
		Example: `  liftoff build --repo 127.0.0.1:5000/shortener
  liftoff build --repo 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shortener --platform linux/arm64
  liftoff build --oci-layout ./image   # no registry: write an OCI layout`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runBuild(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Package, "package", "", "Go main package to build (default: the stack's liftoff:package, or ./app/cmd/shortener)")
	fl.StringSliceVar(&o.Platforms, "platform", image.DefaultPlatforms, "platforms to build")
	fl.StringVar(&o.BaseImage, "base-image", "", "start from this image instead of the scratch base")
	fl.StringVar(&o.Repo, "repo", "", "repository to push to (default: the stack's liftoff:registry; none: build only)")
	fl.BoolVar(&o.InsecureRegistry, "insecure-registry", false, "allow plain HTTP to a registry that is not on loopback")
	fl.StringVar(&o.OCILayout, "oci-layout", "", "also write the image to this OCI layout directory")
	return cmd
}

func runBuild(ctx context.Context, o *BuildOptions) error {
	f := o.f
	pkg, repo, insecure := o.Package, o.Repo, o.InsecureRegistry
	// A selected stack supplies defaults (flags win); without one, build alone.
	if _, err := f.StackName(); err == nil {
		cfg, err := f.StackConfig()
		if err != nil {
			return err
		}
		if pkg == "" {
			pkg = cfg.App.Package
		}
		if repo == "" {
			repo, insecure = cfg.Registry.Repository, insecure || cfg.Registry.Insecure
		}
	}
	if pkg == "" {
		pkg = config.DefaultPackage
	}
	res, err := launch.Build(ctx, launch.Deps{Printer: f.Printer(), Now: f.Now}, launch.BuildOptions{
		Dir: f.Dir(), Package: pkg, Platforms: o.Platforms, BaseImage: o.BaseImage, Repository: repo, Insecure: insecure,
		OCILayout: o.OCILayout, CacheDir: filepath.Join(f.Home(), "cache", "image"), Getenv: f.Getenv,
	})
	if err != nil {
		return err
	}
	text := res.Digest
	if res.Reference != "" {
		text = res.Reference
	}
	f.Printer().Result(text, res)
	return nil
}
