// Package launch runs liftoff's long operations as explicit phases, each
// timed, reported and checked for interruption before the next begins:
// `up` (infrastructure, then the app), `preview` and `destroy`.
package launch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/cost"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// Deps are what the phases use; tests substitute them.
type Deps struct {
	Engine  *engine.Engine
	Printer *ui.Printer
	// Targets choose each stack's target: its program, preflight, teardown
	// (stacks.Targets outside tests).
	Targets *target.Registry
	// StackLock is where this run takes stack locks, and as whom.
	StackLock StackLock
	Now       func() time.Time
	// Getenv reads the run's environment (nil: none): a preview's own
	// registry credentials.
	Getenv func(string) string
}

func (d Deps) getenv(k string) string {
	if d.Getenv == nil {
		return ""
	}
	return d.Getenv(k)
}

// handoff is what a preview's parent hands it (nil for any other stack).
func (d Deps) handoff(ctx context.Context, cfg *config.Stack) (*target.Handoff, error) {
	if cfg.Preview == nil {
		return nil, nil
	}
	return Handoff(ctx, d.Engine, cfg, d.getenv)
}

// PhaseResult is one phase's outcome, for summaries.
type PhaseResult = ui.PhaseTiming

// errSkipped marks a phase with nothing to do.
var errSkipped = ui.ErrSkipped

// phase is one step of a long operation.
type phase struct {
	name string
	run  func(ctx context.Context) error
}

// runPhases runs phases in order, stopping at the first failure or interruption.
func runPhases(ctx context.Context, d Deps, phases []phase) ([]PhaseResult, error) {
	var results []PhaseResult
	for _, ph := range phases {
		if err := ctx.Err(); err != nil {
			return results, failure.New(failure.Interrupted, fmt.Errorf("interrupted before %s", ph.name), "rerun the command: it resumes where it stopped")
		}
		start := d.Now()
		d.Printer.StartPhase(ph.name)
		err := ph.run(ctx)
		d.Printer.EndPhase(ph.name, err)
		res := PhaseResult{Name: ph.name, Status: "ok", Millis: d.Now().Sub(start).Milliseconds()}
		switch {
		case errors.Is(err, ui.ErrSkipped):
			res.Status = "skipped"
		case err != nil:
			res.Status = "failed"
			return append(results, res), fmt.Errorf("%s: %w", ph.name, err)
		}
		results = append(results, res)
	}
	return results, nil
}

// UpOptions select what `up` does.
type UpOptions struct {
	Config *config.Stack
	// SkipInfra ships the app only, reading the infrastructure from the stack's outputs.
	SkipInfra bool
	// InfraOnly stops after the infrastructure phase.
	InfraOnly bool
	// Build says how to build when no image is given.
	Build BuildOptions
	// Rollout is what the deploy does (a prebuilt Image, Force, Smoke,
	// ReadyTimeout, Detach), handed to it as is.
	Rollout rollout.DeployOptions
	// KubeDir holds kubeconfig files the stack outputs as content.
	KubeDir string
	// Refresh reads the live state of every resource first (drift is repaired).
	Refresh bool
	// Tune lets tests shorten the rollout client's waits.
	Tune func(*rollout.Client)
	// TargetFlags are the values of the target's own flags of up.
	TargetFlags target.FlagValues
	// AllowDataReplacement applies a plan that replaces or deletes what
	// holds data (see target.HoldsData); up refuses one otherwise.
	AllowDataReplacement bool
	// BackupDir holds the stack's backups (one is taken before migrations).
	BackupDir string
}

// UpResult is the summary of `up`.
type UpResult struct {
	Config  *config.Stack  `json:"-"`
	Stack   string         `json:"stack"`
	Outputs map[string]any `json:"outputs"`
	// Changes counts the infrastructure steps by operation; no changes but "same" means nothing was touched.
	Changes engine.Changes `json:"changes,omitempty"`
	Deploy  *DeployResult  `json:"deploy,omitempty"`
	Site    Site           `json:"-"`
	Phases  []PhaseResult  `json:"phases"`
	// Expires is when a preview stack's TTL runs out (liftoff stacks gc destroys it then).
	Expires *time.Time `json:"expires,omitempty"`
	// Cost is the target's monthly estimate (nil: the machines are the user's own).
	Cost *cost.Estimate `json:"cost,omitempty"`
	// Failed: up stopped before the end; a rerun resumes.
	Failed bool `json:"failed,omitempty"`
}

// Up stands the stack up: infrastructure, then build, push and a blue-green
// deploy. Every phase is idempotent, so a rerun after a failure or an
// interruption resumes and finishes.
func Up(ctx context.Context, d Deps, o UpOptions) (_ *UpResult, err error) {
	release, err := d.lockStack(ctx, o.Config.Name)
	if err != nil {
		return nil, err
	}
	defer release()
	tg, err := d.Targets.For(o.Config)
	if err != nil {
		return nil, err
	}
	res := &UpResult{Config: o.Config, Stack: o.Config.Name, Cost: tg.Cost(o.Config)}
	defer func() { res.Failed = err != nil }()
	var seen map[string]auto.ConfigValue // what the program was handed, once it ran
	var st *engine.Stack
	var outs engine.Outputs
	var expires time.Time
	if o.Config.Preview != nil {
		expires = d.Now().Add(o.Config.Preview.TTL).UTC().Truncate(time.Second)
		res.Expires = &expires
	}
	phases := []phase{{"infrastructure", func(ctx context.Context) error {
		var err error
		var parent *target.Handoff
		if o.Config.Preview != nil && !o.SkipInfra {
			p, err := openParent(ctx, d.Engine, o.Config.Preview.Of)
			if err != nil {
				return err
			}
			if err := checkPreviews(ctx, d.Engine, o.Config, p.st); err != nil {
				return err
			}
			if parent, err = handoff(ctx, o.Config, p, d.getenv); err != nil {
				return err
			}
		}
		// The program is read when the engine runs it, after preflight.
		var facts target.Facts
		program := func(ctx *pulumi.Context) error {
			seen = siteValues(ctx)
			return d.Targets.Program(o.Config, facts)(ctx)
		}
		if st, err = d.Engine.Stack(ctx, o.Config.Name, program, true); err != nil {
			return fmt.Errorf("open stack %s: %w", o.Config.Name, err)
		}
		if !o.SkipInfra {
			if err := prepare(ctx, d, tg, st, o.Config); err != nil {
				return err
			}
		}
		if o.Config.Preview != nil {
			if err := tagPreview(ctx, st, o.Config, expires); err != nil {
				return fmt.Errorf("tag preview %s: %w", o.Config.Name, err)
			}
		}
		if !o.SkipInfra {
			if facts, err = tg.Preflight(ctx, target.PreflightInput{Config: o.Config, Project: d.Engine.Project(), Stack: st, Log: d.Printer, Now: d.Now, Flags: o.TargetFlags}); err != nil {
				return fmt.Errorf("preflight: %w", err)
			}
			facts.Parent = parent
		}
		if o.SkipInfra {
			if outs, err = st.Outputs(ctx); err != nil {
				return fmt.Errorf("read the outputs of %s: %w", o.Config.Name, err)
			}
			return errSkipped
		}
		// A run that touches no cluster (infrastructure only, and a program
		// with no provider: nothing in the cluster) needs none to answer.
		if !o.InfraOnly || len(tg.Plugins(o.Config)) > 0 {
			if err := checkOwnership(ctx, d, tg, o.Config, st, parent, o.KubeDir); err != nil {
				return err
			}
		}
		guarded := func() {}
		if !st.Empty() {
			if guarded, err = guardData(ctx, d, tg, st, o.Config, o.AllowDataReplacement); err != nil {
				return err
			}
		}
		st.Refresh = o.Refresh
		outs, res.Changes, err = st.Up(ctx, d.Printer)
		if err == nil {
			guarded()
		}
		if err == nil && !res.Changes.HasChanges() {
			d.Printer.Infof("infrastructure is up to date: nothing changed")
		}
		return err
	}}}
	res.Phases, err = runPhases(ctx, d, phases)
	res.Outputs = outs.Masked()
	if err != nil || o.InfraOnly {
		return res, err
	}
	t := SiteFromConfig(tg, d.Engine.Project(), o.Config)
	if err := resolveSite(ctx, st, outs, &t, o.KubeDir, seen); err != nil {
		return res, fmt.Errorf("where the app goes: %w", err)
	}
	if o.Config.Preview != nil {
		labelPreview(&t, o.Config, expires)
	}
	res.Site = t
	ro := o.Rollout
	if ro.Image == "" {
		ro.Image = o.Config.App.Image
	}
	if ro.Migrate == nil {
		ro.Migrate = o.Config.App.Migrate
	}
	data := &DB{Site: t, Config: o.Config, Project: d.Engine.Project(), Dir: o.BackupDir, Self: d.StackLock.Self}
	e, err := data.Client(d)
	if err != nil {
		return res, err
	}
	if data.inCluster() {
		login, password, err := databaseCredentials(ctx, e, t.SecretName)
		if err != nil {
			return res, err
		}
		waiting := func(reason string) {
			d.Printer.Infof("waiting up to %s for the in-cluster PostgreSQL to take connections to the app's database (%s)", databaseWait, reason)
		}
		if err := ensureLogins(ctx, e, password, waiting); err != nil {
			return res, err
		}
		d.Printer.Infof("database login %s ready (no superuser; owner of the app's database through %s)", login, outputs.DatabaseOwner)
	}
	dr, err := deployWith(ctx, d, e, DeployOptions{Site: t, Build: o.Build, Rollout: ro, Self: d.StackLock.Self, Tune: o.Tune, Data: data})
	if dr != nil {
		res.Deploy = dr
		res.Phases = append(res.Phases, dr.Phases...)
	}
	return res, err
}

// PreviewResult is the plan of `preview`.
type PreviewResult struct {
	Stack string `json:"stack"`
	// Changes counts the planned steps by operation; Steps are each resource's.
	Changes engine.Changes `json:"changes"`
	Steps   []engine.Step  `json:"steps"`
	// Cost is the target's monthly estimate of the config (nil: none).
	Cost *cost.Estimate `json:"cost,omitempty"`
}

// Preview plans the stack without changing anything; refresh reads the
// live state first, so the plan shows drift.
func Preview(ctx context.Context, d Deps, cfg *config.Stack, refresh bool) (*PreviewResult, error) {
	res := &PreviewResult{Stack: cfg.Name}
	_, err := runPhases(ctx, d, []phase{{"preview", func(ctx context.Context) error {
		tg, err := d.Targets.For(cfg)
		if err != nil {
			return err
		}
		// The program is read when the engine runs it, after the facts.
		var facts target.Facts
		program := func(ctx *pulumi.Context) error { return d.Targets.Program(cfg, facts)(ctx) }
		st, err := d.Engine.Stack(ctx, cfg.Name, program, true)
		if err != nil {
			return fmt.Errorf("open stack %s: %w", cfg.Name, err)
		}
		if err := prepare(ctx, d, tg, st, cfg); err != nil {
			return err
		}
		// A target whose preflight only reads gives the plan the facts up
		// would have (kubeconfig: whether the cluster has a metrics API), so
		// the plan shows what up would do.
		if _, ok := tg.(target.ReadOnlyPreflight); ok {
			if facts, err = tg.Preflight(ctx, target.PreflightInput{Config: cfg, Project: d.Engine.Project(), Stack: st, Log: d.Printer, Now: d.Now}); err != nil {
				return fmt.Errorf("preflight: %w", err)
			}
		}
		if facts.Parent, err = d.handoff(ctx, cfg); err != nil {
			return err
		}
		st.Refresh = refresh
		res.Changes, err = st.Preview(ctx, d.Printer)
		res.Steps = st.Steps()
		res.Cost = tg.Cost(cfg)
		return err
	}}})
	return res, err
}

// prepare runs before the engine runs cfg's program: every resource plugin
// the program loads must be on this machine, or downloadable (a missing one
// offline stops here, before anything changes, with the fix), and the
// secrets liftoff generates for what the config runs (config.Missing) are
// made and stored encrypted in the stack's config.
func prepare(ctx context.Context, d Deps, tg target.Target, st *engine.Stack, cfg *config.Stack) error {
	if err := checkPlugins(d, tg, cfg); err != nil {
		return err
	}
	entries := map[string]engine.ConfigEntry{}
	for _, key := range config.Missing(cfg) {
		v, err := config.GenerateSecret()
		if err != nil {
			return fmt.Errorf("generate a secret: %w", err)
		}
		entries[key] = engine.ConfigEntry{Value: v, Secret: true}
		d.Printer.Infof("generated %s (stored encrypted in the stack's config)", config.ShortName(key))
	}
	if len(entries) == 0 {
		return nil
	}
	return st.SetConfigs(ctx, entries)
}

// checkPlugins makes sure the engine finds every plugin cfg's program
// loads: installed in liftoff's Pulumi home, or installed there now from
// next to the pulumi CLI or PATH, or downloadable.
func checkPlugins(d Deps, tg target.Target, cfg *config.Stack) error {
	for _, p := range tg.Plugins(cfg) {
		path, how := d.Engine.LocatePlugin(p)
		switch {
		case how == "installed":
			continue
		case path != "":
			if err := d.Engine.InstallPlugin(p, path); err != nil {
				return failure.New(failure.Config, fmt.Errorf("install the %s plugin from %s: %w", p.Name, path, err), "check that liftoff's home is writable")
			}
			d.Printer.Infof("installed the %s plugin v%s from %s (%s)", p.Name, p.Version, path, how)
		case d.Engine.AcquiresPlugins():
			d.Printer.Infof("the %s plugin v%s is not on this machine: the engine downloads it", p.Name, p.Version)
		default:
			return failure.Newf(failure.Config, d.Engine.PluginFix(p),
				"the %s resource plugin v%s that this stack needs is not on this machine, and plugin downloads are off (PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION)", p.Name, p.Version)
		}
	}
	return nil
}
