package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// DeployOptions are the flags of `liftoff deploy`.
type DeployOptions struct {
	f         *Factory
	Cluster   ClusterFlags
	Package   string
	Platforms []string
	LockWait  time.Duration
	// ScaleDownDelay, when given (ScaleDownSet), replaces the stack's
	// liftoff:scaleDownDelay: how long the old slot stays warm (0: parked at once).
	ScaleDownDelay time.Duration
	ScaleDownSet   bool
	// Bake and Steps, when given (BakeSet), replace the stack's bake window
	// and steps.
	Bake    time.Duration
	BakeSet bool
	Steps   string
	// Rollout is what the rollout does: --image, --no-promote, --detach,
	// --force-deploy, --smoke, --ready-timeout, handed to it as is.
	Rollout rollout.DeployOptions
}

// NewCmdDeploy rolls the app out blue-green.
func NewCmdDeploy(f *Factory, runF func(*DeployOptions) error) *cobra.Command {
	o := &DeployOptions{f: f}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Build, push and roll out the app blue-green (what CI runs on every merge)",
		Long: `Deploy builds and pushes the image (unless --image is given), installs it into the
idle slot, waits until every replica is ready (failing fast on crash loops, image
pull errors, OOM kills, bad config and unschedulable pods), smoke-tests it through
the preview Service, then flips the live Service to it. The previous slot stays
warm for liftoff:scaleDownDelay so rollback is instant.

The cluster comes from the stack's outputs, or from --kubeconfig/--context/--namespace.`,
		Example: `  liftoff deploy
  liftoff deploy --image ghcr.io/acme/shortener@sha256:...
  liftoff deploy --kubeconfig ~/.kube/config --context prod --namespace shop --registry ghcr.io/acme/shortener`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.BakeSet = cmd.Flags().Changed("bake")
			o.ScaleDownSet = cmd.Flags().Changed("scale-down-delay")
			if runF != nil {
				return runF(o)
			}
			return runDeploy(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	o.Cluster.register(fl)
	fl.StringVar(&o.Rollout.Image, "image", "", "deploy this image (repo@sha256:...) instead of building")
	fl.StringVar(&o.Package, "package", "", "Go main package to build (default: the stack's liftoff:package)")
	fl.StringSliceVar(&o.Platforms, "platform", nil, "platforms to build (default: those of the cluster's nodes)")
	fl.BoolVar(&o.Rollout.AllowBreakingMigration, "allow-breaking-migration", false, "run a migration liftoff sees the live slot would not survive (after a backup)")
	fl.BoolVar(&o.Rollout.Force, "force-deploy", false, "deploy to the idle slot and flip even when the live slot already runs this image with these values and secrets")
	fl.BoolVar(&o.Rollout.NoPromote, "no-promote", false, "stop before the flip; the new slot stays on the preview Service")
	fl.BoolVar(&o.Rollout.Detach, "detach", false, "return after the flip instead of waiting to park the old slot (the next liftoff command parks it)")
	fl.DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another deploy of the app to finish")
	fl.StringVar((*string)(&o.Rollout.Smoke), "smoke", string(rollout.SmokeAuto), "smoke test before the flip: auto (skip when the API server cannot reach pods), on, off")
	fl.DurationVar(&o.Rollout.ReadyTimeout, "ready-timeout", rollout.DefaultReadyTimeout, "fail the deploy when the new slot is not ready within this")
	fl.DurationVar(&o.ScaleDownDelay, "scale-down-delay", 0, "keep the old slot warm this long after the flip, 0 parks it at once (default: liftoff:scaleDownDelay, or 5m)")
	fl.DurationVar(&o.Bake, "bake", config.DefaultBake, "watch the new release's real traffic this long after the flip and roll back on a breach (default: liftoff:bake; 0 turns it off)")
	fl.StringVar(&o.Steps, "steps", "", "move traffic in steps, each baked, e.g. 10,50,100 (default: liftoff:steps; off for all at once)")
	return cmd
}

// checkRollout refuses bad rollout flags before anything connects: an
// unknown smoke mode, an image that is no reference.
func checkRollout(o rollout.DeployOptions) error {
	switch o.Smoke {
	case rollout.SmokeAuto, rollout.SmokeOn, rollout.SmokeOff, "":
	default:
		return failure.Newf(failure.Config, "use --smoke auto, on or off", "--smoke %q is not a mode", o.Smoke)
	}
	if o.Image != "" {
		if _, err := rollout.ParseImage(o.Image); err != nil {
			return err
		}
	}
	return nil
}

func runDeploy(ctx context.Context, o *DeployOptions) error {
	f := o.f
	if err := checkRollout(o.Rollout); err != nil {
		return err
	}
	if o.Bake < 0 || o.Bake > time.Hour {
		return failure.Newf(failure.Config, "use --bake 1m, or 0 to turn the bake off", "--bake %s is not from 0 to 1h", o.Bake)
	}
	if o.ScaleDownDelay < 0 || o.ScaleDownDelay > 24*time.Hour {
		return failure.Newf(failure.Config, "use --scale-down-delay 5m, or 0 to park the old slot at once", "--scale-down-delay %s is not from 0 to 24h", o.ScaleDownDelay)
	}
	steps, err := config.ParseSteps(o.Steps)
	if err != nil {
		return failure.New(failure.Config, fmt.Errorf("--steps %q: %w", o.Steps, err), "use --steps 10,50,100, or --steps off")
	}
	t, cfg, err := f.Site(ctx, o.Cluster)
	if err != nil {
		return err
	}
	if o.BakeSet {
		t.Bake.Window = o.Bake
	}
	if o.Steps != "" {
		t.Steps = steps
	}
	if len(t.Steps) > 0 && t.Bake.Window == 0 {
		return failure.Newf(failure.Config, "give a bake window (--bake 1m): each step is held and judged for it", "--steps without a bake")
	}
	pkg := o.Package
	if pkg == "" && cfg != nil {
		pkg = cfg.App.Package
	}
	if pkg == "" {
		pkg = config.DefaultPackage
	}
	ro := o.Rollout
	if ro.Image == "" && cfg != nil && cfg.App.Image != "" {
		ro.Image = cfg.App.Image
	}
	if o.ScaleDownSet || o.ScaleDownDelay > 0 {
		t.ScaleDownDelay = o.ScaleDownDelay
	}
	self := lock.Self("liftoff deploy", f.Getenv, f.Now())
	d := launch.Deps{Printer: f.Printer(), Now: f.Now}
	var data *launch.DB
	if cfg != nil {
		if ro.Migrate == nil {
			ro.Migrate = cfg.App.Migrate
		}
		eng, err := f.Engine(ctx)
		if err != nil {
			return err
		}
		data = &launch.DB{Site: t, Config: cfg, Project: eng.Project(), Dir: backup.Dir(f.Home(), eng.Project(), cfg.Name), Self: self}
	}
	res, err := launch.Deploy(ctx, d, launch.DeployOptions{Site: t, Rollout: ro, LockWait: o.LockWait, Self: self, Data: data,
		Build: launch.BuildOptions{Dir: f.Dir(), Package: pkg, Platforms: o.Platforms, CacheDir: filepath.Join(f.Home(), "cache", "image"), Getenv: f.Getenv}})
	if res != nil && res.Result != nil {
		f.Printer().Summarize(res)
	}
	return err
}

// RolloutOptions are the flags of `liftoff promote` and `liftoff rollback`.
type RolloutOptions struct {
	f        *Factory
	Cluster  ClusterFlags
	Detach   bool
	LockWait time.Duration
}

// NewCmdPromote flips traffic to the preview slot.
func NewCmdPromote(f *Factory, runF func(*RolloutOptions) error) *cobra.Command {
	return rolloutCommand(f, runF, "promote", "Move live traffic to the slot on the preview Service (after deploy --no-promote)",
		func(ctx context.Context, e *rollout.Client, o *RolloutOptions) (*rollout.Result, error) {
			return e.Promote(ctx, o.Detach)
		})
}

// NewCmdRollback flips traffic back to the previous slot.
func NewCmdRollback(f *Factory, runF func(*RolloutOptions) error) *cobra.Command {
	return rolloutCommand(f, runF, "rollback", "Move live traffic back to the previous slot (instant while it is warm)",
		func(ctx context.Context, e *rollout.Client, o *RolloutOptions) (*rollout.Result, error) {
			return e.Rollback(ctx, o.Detach)
		})
}

func rolloutCommand(f *Factory, runF func(*RolloutOptions) error, use, short string,
	do func(context.Context, *rollout.Client, *RolloutOptions) (*rollout.Result, error)) *cobra.Command {
	o := &RolloutOptions{f: f}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			ctx := cmd.Context()
			t, _, err := f.Site(ctx, o.Cluster)
			if err != nil {
				return err
			}
			e, err := t.Client(launch.Deps{Printer: f.Printer(), Now: f.Now}, lock.Self("liftoff "+use, f.Getenv, f.Now()))
			if err != nil {
				return err
			}
			e.LockWait = o.LockWait
			f.Printer().StartPhase(use)
			r, err := do(ctx, e, o)
			f.Printer().EndPhase(use, err)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("%s: slot %s is live in %s (flip took %s)", t.App, r.Live, t.Namespace, r.Flip.Round(time.Millisecond))
			f.Printer().Result(text, rolloutResult{Rollout: r, Namespace: t.Namespace, App: t.App})
			return nil
		},
	}
	o.Cluster.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.Detach, "detach", true, "return after the flip; the next liftoff command parks the old slot after its delay")
	cmd.Flags().DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another deploy of the app to finish")
	return cmd
}

// appStatus renders both slots for `liftoff status`.
func appStatus(st *rollout.Status) string {
	var b strings.Builder
	fmt.Fprintf(&b, "app       %s in namespace %s, live slot: %s\n", st.App, st.Namespace, orDash(st.Live))
	for _, s := range st.Slots {
		role := ""
		switch {
		case s.Live:
			role = " LIVE"
		case s.Preview:
			role = " preview"
		}
		if s.Revision == 0 {
			fmt.Fprintf(&b, "  %-5s  never deployed\n", s.Slot)
			continue
		}
		fmt.Fprintf(&b, "  %-5s  %d/%d ready  revision %d (%s)  %s%s", s.Slot, s.Ready, s.Desired, s.Revision, s.HelmStatus, s.Image, role)
		if s.Secrets != "" {
			fmt.Fprintf(&b, "  secrets %s", s.Secrets)
		}
		if !s.ScaleDownAt.IsZero() {
			fmt.Fprintf(&b, "  parks at %s", s.ScaleDownAt.Local().Format(time.TimeOnly))
		}
		b.WriteString("\n")
	}
	if st.Lock != nil {
		fmt.Fprintf(&b, "  deploying now: %s\n", st.Lock)
	}
	if len(st.Recent) > 0 {
		b.WriteString("recent    (liftoff releases for more)\n")
		for _, r := range st.Recent {
			fmt.Fprintf(&b, "  %s  %-8s %-5s %s  %s  %s\n", r.Time.Local().Format(time.DateTime), r.Action, orDash(r.Slot), shortDigest(r.Digest), r.Who, r.Result)
		}
	}
	return b.String()
}

// rolloutResult is what promote or rollback did to an app.
type rolloutResult struct {
	Rollout   *rollout.Result `json:"rollout"`
	Namespace string          `json:"namespace"`
	App       string          `json:"app"`
}
