package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// UpOptions are the flags of `liftoff up`.
type UpOptions struct {
	f         *Factory
	LockWait  time.Duration
	SkipInfra bool
	InfraOnly bool
	Platforms []string
	// WaitScaleDown keeps up running until the previous slot is parked.
	WaitScaleDown bool
	// PreviewOf makes (or creates) the stack a preview of this parent; TTL sets its lifetime.
	PreviewOf string
	TTL       string
	// Kubeconfig and Context are a preview's own access to its parent's
	// cluster, recorded as its liftoff:previewKubeconfig and liftoff:previewContext.
	Kubeconfig string
	Context    string
	// Refresh reads the live state of the infrastructure first, repairing drift.
	Refresh bool
	// AllowDataReplacement applies a plan that replaces or deletes what
	// holds data (a renamed namespace, a removed homelab node).
	AllowDataReplacement bool
	// WithData fills a preview's database with a copy of its parent's.
	WithData bool
	// Rollout is what the deploy does: --image, --force-deploy, --smoke,
	// --ready-timeout, handed down to the rollout as is.
	Rollout rollout.DeployOptions
	// TargetFlags are the values of the flags only a target reads.
	TargetFlags target.FlagValues
}

// NewCmdUp stands a stack up.
func NewCmdUp(f *Factory, runF func(*UpOptions) error) *cobra.Command {
	o := &UpOptions{f: f}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create or update the stack's infrastructure, then build, push and deploy the app",
		Long: `Up runs the phases infrastructure (the target's Pulumi program), build, push
and deploy (blue-green, with a smoke test before the flip), then prints a
summary: the live URL, the preview Service, dashboards, the image digest and
each phase's duration. Every phase is idempotent: after a failure or an
interruption, run up again and it resumes.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.SkipInfra && o.InfraOnly {
				return failure.Newf(failure.Config, "pass one of them", "--skip-infra and --infra-only exclude each other")
			}
			if runF != nil {
				return runF(o)
			}
			return runUp(cmd.Context(), o)
		},
	}
	cmd.Flags().DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another run on the stack to finish (e.g. 5m)")
	cmd.Flags().BoolVar(&o.SkipInfra, "skip-infra", false, "ship the app only, using the infrastructure already recorded")
	cmd.Flags().BoolVar(&o.InfraOnly, "infra-only", false, "stop after the infrastructure phase")
	cmd.Flags().StringVar(&o.Rollout.Image, "image", "", "ship this prebuilt image (repo@sha256:...) instead of building")
	cmd.Flags().StringSliceVar(&o.Platforms, "platform", nil, "platforms to build (default: those of the cluster's nodes)")
	cmd.Flags().BoolVar(&o.Rollout.AllowBreakingMigration, "allow-breaking-migration", false, "run a migration liftoff sees the live slot would not survive (after a backup)")
	cmd.Flags().BoolVar(&o.Rollout.Force, "force-deploy", false, "deploy to the idle slot and flip even when the live slot already runs this image with these values and secrets")
	cmd.Flags().StringVar((*string)(&o.Rollout.Smoke), "smoke", string(rollout.SmokeAuto), "smoke test before the flip: auto, on, off")
	cmd.Flags().StringVar(&o.PreviewOf, "preview-of", "", "make the stack a preview of this parent stack on its cluster (created from the parent's app settings when new)")
	cmd.Flags().StringVar(&o.TTL, "ttl", "", "preview lifetime from now, e.g. 72h (sets liftoff:ttl; liftoff stacks gc destroys it afterwards)")
	cmd.Flags().StringVar(&o.Kubeconfig, "kubeconfig", "", "a preview: its own kubeconfig for the parent's cluster, instead of the parent's credentials")
	cmd.Flags().StringVar(&o.Context, "context", "", "a preview: the context in its own kubeconfig (default: the file's current one)")
	cmd.Flags().BoolVar(&o.WithData, "with-data", false, "a preview: copy its parent's data into it (a backup of the parent, restored into the preview)")
	cmd.Flags().BoolVar(&o.AllowDataReplacement, "allow-data-replacement", false, "apply a plan that replaces or deletes what holds data (back it up first: liftoff db backup)")
	cmd.Flags().BoolVar(&o.Refresh, "refresh", true, "read the infrastructure's live state first, so up repairs what was changed by hand")
	cmd.Flags().DurationVar(&o.Rollout.ReadyTimeout, "ready-timeout", rollout.DefaultReadyTimeout, "fail the deploy when the new slot is not ready within this")
	cmd.Flags().BoolVar(&o.WaitScaleDown, "wait-scale-down", false, "keep running until the previous slot is parked (default: the next liftoff command parks it)")
	tflags := registerTargetFlags(f.targets(), target.CommandUp, cmd.Flags())
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		o.TargetFlags = tflags.Given()
		return run(cmd, args)
	}
	return cmd
}

func runUp(ctx context.Context, o *UpOptions) error {
	f := o.f
	if err := checkRollout(o.Rollout); err != nil {
		return err
	}
	access, err := previewAccess(o)
	if err != nil {
		return err
	}
	if o.WithData {
		// The copy takes the parent's secrets: a run without them stops here.
		of := o.PreviewOf
		if of == "" {
			if cfg, err := f.StackConfig(); err == nil && cfg.Preview == nil {
				return failure.Newf(failure.Config, "drop --with-data, or make a preview: liftoff up --preview-of PARENT --with-data", "--with-data copies a parent's data into a preview; %s is not a preview", cfg.Name)
			} else if err == nil {
				of = cfg.Preview.Of
			}
		}
		if of != "" {
			if err := launch.CheckDataAccess(ctx, f.Engine, of); err != nil {
				return err
			}
		}
	}
	if o.PreviewOf != "" {
		name, err := f.StackName()
		if err != nil {
			return err
		}
		if err := launch.EnsurePreview(ctx, f.Engine, f.Printer(), f.Dir(), name, o.PreviewOf, access); err != nil {
			return err
		}
	}
	cfg, err := f.StackConfig()
	if err != nil {
		return err
	}
	if len(access) > 0 && o.PreviewOf == "" {
		if cfg.Preview == nil {
			var given []string
			for fl, v := range map[string]string{"--ttl": o.TTL, "--kubeconfig": o.Kubeconfig, "--context": o.Context} {
				if v != "" {
					given = append(given, fl)
				}
			}
			slices.Sort(given)
			return failure.Newf(failure.Config, "add --preview-of PARENT, or drop "+strings.Join(given, " and "),
				"only a preview stack takes %s (%s is not one)", strings.Join(given, " and "), cfg.Name)
		}
		if err := launch.EnsurePreview(ctx, f.Engine, f.Printer(), f.Dir(), cfg.Name, cfg.Preview.Of, access); err != nil {
			return err
		}
		if cfg, err = f.StackConfig(); err != nil {
			return err
		}
	}
	if err := checkTargetFlags(f.targets(), target.CommandUp, o.TargetFlags, string(cfg.Target), cfg.Preview != nil); err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, "liftoff up", o.LockWait)
	if err != nil {
		return err
	}
	ro := o.Rollout
	ro.Detach = !o.WaitScaleDown
	res, err := launch.Up(ctx, d, launch.UpOptions{Config: cfg, SkipInfra: o.SkipInfra, InfraOnly: o.InfraOnly, Rollout: ro,
		KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()), TargetFlags: o.TargetFlags, Refresh: o.Refresh, AllowDataReplacement: o.AllowDataReplacement,
		BackupDir: backup.Dir(f.Home(), d.Engine.Project(), cfg.Name),
		Build:     launch.BuildOptions{Dir: f.Dir(), Package: cfg.App.Package, Platforms: o.Platforms, CacheDir: filepath.Join(f.Home(), "cache", "image"), Getenv: f.Getenv}})
	if err == nil && o.WithData && res.Deploy != nil {
		err = copyParentData(ctx, f, d, cfg, res.Site)
	}
	if res != nil {
		f.Printer().Summarize(res)
	}
	return err
}

// previewAccess is what --ttl, --kubeconfig and --context record on a
// preview, by setting, checked before anything is written: the kubeconfig
// must be readable and hold the context.
func previewAccess(o *UpOptions) (config.Values, error) {
	vals := config.Values{}
	if o.TTL != "" {
		vals["liftoff:ttl"] = config.Plain(o.TTL)
	}
	if o.Context != "" && o.Kubeconfig == "" {
		return nil, failure.Newf(failure.Config, "pass --kubeconfig FILE with it", "--context names a context in the preview's own kubeconfig (--kubeconfig), which is not given")
	}
	if o.Kubeconfig != "" {
		path, err := filepath.Abs(o.Kubeconfig)
		if err != nil {
			return nil, failure.Newf(failure.Config, "pass --kubeconfig an absolute path", "--kubeconfig %s: %v", o.Kubeconfig, err)
		}
		if _, _, err := launch.OwnKubeconfig(path, o.Context); err != nil {
			return nil, err
		}
		vals["liftoff:previewKubeconfig"] = config.Plain(path)
		if o.Context != "" {
			vals["liftoff:previewContext"] = config.Plain(o.Context)
		}
	}
	return vals, nil
}

// copyParentData restores a fresh backup of a preview's parent into it.
func copyParentData(ctx context.Context, f *Factory, d launch.Deps, cfg *config.Stack, site launch.Site) error {
	parent, err := f.stackConfig(cfg.Preview.Of)
	if err != nil {
		return fmt.Errorf("the parent's data: %w", err)
	}
	kubeDir := filepath.Join(f.Home(), "kube", d.Engine.Project())
	psite, err := launch.StackSite(ctx, d.Engine, f.targets(), parent, kubeDir)
	if err != nil {
		return fmt.Errorf("the parent's data: %w", err)
	}
	project := d.Engine.Project()
	from := &launch.DB{Site: psite, Config: parent, Project: project, Dir: backup.Dir(f.Home(), project, parent.Name), Self: d.StackLock.Self}
	to := &launch.DB{Site: site, Config: cfg, Project: project, Dir: backup.Dir(f.Home(), project, cfg.Name), Self: d.StackLock.Self}
	f.Printer().StartPhase("data")
	_, err = launch.CopyData(ctx, d, from, to)
	f.Printer().EndPhase("data", err)
	return err
}

// LaunchDeps wires the engine, printer, targets and the stack lock this
// run (command) takes, queueing for up to lockWait.
func (f *Factory) LaunchDeps(ctx context.Context, command string, lockWait time.Duration) (launch.Deps, error) {
	eng, err := f.Engine(ctx)
	if err != nil {
		return launch.Deps{}, err
	}
	return launch.Deps{
		Engine: eng, Printer: f.Printer(), Targets: f.targets(), Now: f.Now, Getenv: f.Getenv,
		StackLock: launch.StackLock{Dir: f.LockDir(), Self: lock.Self(command, f.Getenv, f.Now()), Wait: lockWait},
	}, nil
}
