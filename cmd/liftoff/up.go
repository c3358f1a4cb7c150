package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/stacks"
)

// UpOptions are the flags of `liftoff up`.
type UpOptions struct {
	f             *Factory
	LockWait      time.Duration
	SkipInfra     bool
	InfraOnly     bool
	Image         string
	Platforms     []string
	ForceDeploy   bool
	Smoke         string
	WaitScaleDown bool
	// AcceptNewHostKeys trusts homelab hosts' unknown SSH keys on first use.
	AcceptNewHostKeys bool
	// PreviewOf makes (or creates) the stack a preview of this parent; TTL sets its lifetime.
	PreviewOf string
	TTL       string
	// ReadyTimeout bounds the wait for the new slot.
	ReadyTimeout time.Duration
	// Refresh reads the live state of the infrastructure first, repairing drift.
	Refresh bool
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
	cmd.Flags().StringVar(&o.Image, "image", "", "ship this prebuilt image (repo@sha256:...) instead of building")
	cmd.Flags().StringSliceVar(&o.Platforms, "platform", nil, "platforms to build (default: those of the cluster's nodes)")
	cmd.Flags().BoolVar(&o.ForceDeploy, "force-deploy", false, "deploy to the idle slot and flip even when the live slot already runs this image with these values and secrets")
	cmd.Flags().StringVar(&o.Smoke, "smoke", "auto", "smoke test before the flip: auto, on, off")
	cmd.Flags().BoolVar(&o.AcceptNewHostKeys, "accept-new-host-keys", false, "homelab: trust hosts' unknown SSH keys on first use (then pinned in the stack)")
	cmd.Flags().StringVar(&o.PreviewOf, "preview-of", "", "make the stack a preview of this parent stack on its cluster (created from the parent's app settings when new)")
	cmd.Flags().StringVar(&o.TTL, "ttl", "", "preview lifetime from now, e.g. 72h (sets liftoff:ttl; liftoff stacks gc destroys it afterwards)")
	cmd.Flags().BoolVar(&o.Refresh, "refresh", true, "read the infrastructure's live state first, so up repairs what was changed by hand")
	cmd.Flags().DurationVar(&o.ReadyTimeout, "ready-timeout", rollout.DefaultReadyTimeout, "fail the deploy when the new slot is not ready within this")
	cmd.Flags().BoolVar(&o.WaitScaleDown, "wait-scale-down", false, "keep running until the previous slot is parked (default: the next liftoff command parks it)")
	return cmd
}

func runUp(ctx context.Context, o *UpOptions) error {
	f := o.f
	smoke, err := smokeMode(o.Smoke)
	if err != nil {
		return err
	}
	if o.Image != "" {
		if _, err := rollout.ParseImage(o.Image); err != nil {
			return err
		}
	}
	if o.PreviewOf != "" {
		name, err := f.StackName()
		if err != nil {
			return err
		}
		if err := launch.EnsurePreview(ctx, f.Engine, f.Printer(), f.Dir(), name, o.PreviewOf, o.TTL); err != nil {
			return err
		}
	}
	cfg, err := f.StackConfig()
	if err != nil {
		return err
	}
	if o.TTL != "" && o.PreviewOf == "" {
		if cfg.Preview == nil {
			return failure.Newf(failure.Config, "add --preview-of PARENT, or drop --ttl", "--ttl applies to preview stacks only (%s is not one)", cfg.Name)
		}
		if err := launch.EnsurePreview(ctx, f.Engine, f.Printer(), f.Dir(), cfg.Name, cfg.Preview.Of, o.TTL); err != nil {
			return err
		}
		if cfg, err = f.StackConfig(); err != nil {
			return err
		}
	}
	if k, _ := config.Lookup("liftoff:acceptNewHostKeys"); o.AcceptNewHostKeys && (cfg.Preview != nil || !k.AppliesTo(cfg.Target)) {
		kind := string(cfg.Target)
		if cfg.Preview != nil {
			kind = "a preview"
		}
		return failure.Newf(failure.Config, "drop the flag", "--accept-new-host-keys applies to %s stacks only (%s is %s)", k.TargetList(), cfg.Name, kind)
	}
	d, err := f.LaunchDeps(ctx, cfg, "liftoff up", o.LockWait)
	if err != nil {
		return err
	}
	res, err := launch.Up(ctx, d, launch.UpOptions{Config: cfg, SkipInfra: o.SkipInfra, InfraOnly: o.InfraOnly, Image: o.Image,
		KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()), WaitScaleDown: o.WaitScaleDown, ForceDeploy: o.ForceDeploy, AcceptNewHostKeys: o.AcceptNewHostKeys, Smoke: smoke, ReadyTimeout: o.ReadyTimeout, Refresh: o.Refresh,
		Self:  lock.Self("liftoff up", f.Getenv, f.Now()),
		Build: launch.BuildOptions{Dir: f.Dir(), Package: cfg.App.Package, Platforms: o.Platforms, CacheDir: filepath.Join(f.Home(), "cache", "image"), Getenv: f.Getenv}})
	if res != nil {
		title, outs := upSummary(cfg, res)
		if err != nil {
			title = fmt.Sprintf("Stack %s: up stopped (run it again to resume)", cfg.Name)
		}
		data := map[string]any{"stack": cfg.Name, "phases": res.Phases, "changes": res.Changes, "outputs": res.Outputs}
		if est := stackCost(cfg); est != nil {
			outs["monthly_cost_usd"] = fmt.Sprintf("%.0f (estimate: liftoff preview itemises it)", est.Total)
			data["cost"] = est
		}
		f.Printer().Summary(title, outs, data)
	}
	return err
}

// upSummary is what a founder wants to see after up: where the app lives,
// where its next version waits, the dashboards, the image.
func upSummary(cfg *config.Stack, res *launch.UpResult) (string, map[string]any) {
	outs := map[string]any{}
	for _, k := range []string{outputs.Grafana, outputs.Prometheus, outputs.Alertmanager, outputs.Registry, outputs.Namespace} {
		if v, ok := res.Outputs[k]; ok && v != "" {
			outs[k] = v
		}
	}
	if cfg.Preview != nil && res.Expires != nil {
		outs["preview_of"] = cfg.Preview.Of
		outs["expires"] = res.Expires.Format(time.RFC3339) + " (liftoff stacks gc destroys it then; liftoff up extends it)"
	}
	title := fmt.Sprintf("Stack %s: infrastructure is up", cfg.Name)
	if res.Deploy == nil || res.Deploy.Result == nil {
		return title, outs
	}
	t, r := res.Site, res.Deploy.Result
	outs["image"] = res.Deploy.Image
	outs["live_slot"] = r.Live
	switch {
	case t.URL != "":
		outs["url"] = t.URL
	case cfg.App.Domain != "":
		outs["url"] = "https://" + cfg.App.Domain
	case r.Address != "":
		outs["url"] = r.Address
		outs["reach"] = fmt.Sprintf("the live Service's address, for machines that route to the cluster's network; in the cluster: http://%s.%s.svc.cluster.local; elsewhere: kubectl -n %s port-forward svc/%s 8080:80",
			t.App, t.Namespace, t.Namespace, t.App)
	default:
		outs["url"] = fmt.Sprintf("http://%s.%s.svc.cluster.local (from outside: kubectl -n %s port-forward svc/%s 8080:80)", t.App, t.Namespace, t.Namespace, t.App)
	}
	outs["preview"] = fmt.Sprintf("http://%s.%s.svc.cluster.local", r.Preview, t.Namespace)
	if r.AlreadyLive {
		return fmt.Sprintf("Stack %s is live: slot %s already serves %s with this image (nothing deployed; --force-deploy redeploys)", cfg.Name, r.Live, t.App), outs
	}
	return fmt.Sprintf("Stack %s is live: slot %s serves %s", cfg.Name, r.Live, t.App), outs
}

// LaunchDeps wires the engine, printer, programs and stack lock for cfg.
func (f *Factory) LaunchDeps(ctx context.Context, cfg *config.Stack, command string, lockWait time.Duration) (launch.Deps, error) {
	eng, err := f.Engine(ctx)
	if err != nil {
		return launch.Deps{}, err
	}
	return launch.Deps{
		Engine: eng, Printer: f.Printer(), Targets: stacks.Targets, Now: f.Now,
		Lock: func(ctx context.Context) (func(), error) { return f.stackLock(ctx, eng, cfg.Name, command, lockWait) },
	}, nil
}

// stackLock takes stack's lock for command, returning how to give it up.
func (f *Factory) stackLock(ctx context.Context, eng *engine.Engine, stack, command string, wait time.Duration) (func(), error) {
	l, err := f.Lock(ctx, eng.Project(), stack, command, wait)
	if err != nil {
		return nil, err
	}
	return func() {
		if err := l.Release(); err != nil {
			f.Printer().Warnf("release lock: %v", err)
		}
	}, nil
}
