// Package target is liftoff's one model of a place a stack runs (kind's
// provider lesson): the Pulumi program that stands it up, the check that
// must pass before that program touches anything, what its teardown
// sweeps, and how liftoff reaches the cluster it ends up with. Each target
// is one implementation in stacks/<name>, registered in stacks.Targets; the
// phases in internal/launch and the commands only ever call this interface.
package target

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/cost"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/teardown"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// Target is one kind of place a stack runs.
type Target interface {
	// Name is the liftoff:target value it serves ("aws"); the preview
	// target, which serves every stack with liftoff:previewOf, is "preview".
	Name() string
	// Config is what the config learns about the target: its own keys and
	// how they parse, its summary, the managed services it offers
	// (NewRegistry registers it; the preview target's is not).
	Config() config.TargetSpec
	// Flags are the target's own flags of `liftoff init` and `liftoff up`;
	// their values reach InitValues and Preflight.
	Flags() []Flag
	// Commands are commands only this target needs (aws's eks-token).
	Commands() []Command
	// Program declares the stack's resources; facts are what Preflight found.
	Program(ctx *pulumi.Context, cfg *config.Stack, facts Facts) error
	// Plugins lists the resource plugins Program is sure to load.
	Plugins(cfg *config.Stack) []engine.Plugin
	// Preflight checks the machines Program will change, before anything
	// does change; what it verified travels to Program as facts.
	Preflight(ctx context.Context, in PreflightInput) (Facts, error)
	// Cluster is the kubeconfig file and context the config alone names,
	// before the stack has outputs ("" when the program makes the cluster).
	Cluster(cfg *config.Stack) (kubeconfig, context string)
	// SweepNamespaces are where teardown deletes the objects that
	// controllers turned into cloud resources (load balancers, volumes);
	// nil means every namespace: the stack owns its cluster.
	SweepNamespaces(cfg *config.Stack, appNamespace string) []string
	// Leftovers deletes, by the stack's tags, what outlives the engine's
	// destroy (nil: the target leaves nothing behind). Destroy runs it after
	// the engine, and before a second try when the engine's destroy fails.
	Leftovers(ctx context.Context, in SweepInput) (*teardown.Receipt, error)
	// HasLeftovers reports whether Leftovers can find anything.
	HasLeftovers() bool
	// InitValues turns `liftoff init`'s answers into the target's settings.
	InitValues(in InitInput) (config.Values, error)
	// TeardownValues are the target's settings a teardown needs, recovered
	// from what the program recorded when the settings file is not at hand.
	TeardownValues(rec outputs.Record) config.Values
	// Cost is the stack's monthly estimate, nil when the machines are the
	// user's own or already paid for.
	Cost(cfg *config.Stack) *cost.Estimate
	// HoldsData says what a plan's replace or delete of step's resource
	// would lose ("" when nothing): up refuses such a plan before anything
	// changes. Base knows the in-cluster kinds; targets add their own.
	HoldsData(step engine.Step) string
}

// Facts are what a run verified before the program ran, kept beside the
// config (which stays as parsed) and handed to the program.
type Facts struct {
	// HostKeys are SSH host keys by host:port that preflight trusted, for
	// the program to pin (homelab).
	HostKeys map[string]string
	// MetricsServer: the cluster serves no metrics API but liftoff's own,
	// and the stack autoscales, so the program installs metrics-server
	// (kubeconfig).
	MetricsServer bool
	// Parent is what a preview's parent hands it, read by liftoff before
	// the run (nil on the plain pulumi path, where the program reads the
	// parent itself).
	Parent *Handoff
}

// Handoff is what a preview takes from its parent stack: the parent's
// outputs it reuses (outputs.PreviewReads), with the preview's own
// credentials in place of the parent's secret ones where it has them.
// Secret marks the values the preview's state keeps secret.
type Handoff struct {
	Parent string
	Values map[string]any
	Secret map[string]bool
}

// Str is a string value of the hand-off, "" when absent.
func (h *Handoff) Str(key string) string {
	s, _ := h.Values[key].(string)
	return s
}

// ReadOnlyPreflight is a target whose Preflight only reads (nothing on a
// machine changes, nothing is trusted for the first time): a plan runs it
// too, so the plan is what up would do.
type ReadOnlyPreflight interface{ PreflightOnlyReads() }

// PreflightInput is what Preflight may read.
type PreflightInput struct {
	Config *config.Stack
	// Project is the stack's project (objects carry project/stack as owner).
	Project string
	// Stack is the engine's stack: its outputs (keys pinned by earlier runs)
	// and its config with secrets decrypted.
	Stack *engine.Stack
	Log   *ui.Printer
	Now   func() time.Time
	// Flags are the target's own flags of `up` this run was given.
	Flags FlagValues
}

// SweepInput is what Leftovers works with.
type SweepInput struct {
	Project string
	Config  *config.Stack
	// Wait bounds the wait for each deleted thing to go.
	Wait time.Duration
	Log  teardown.Reporter
}

// InitInput are `liftoff init`'s answers so far: the target's flags, and a
// way to ask for what is missing (Ask returns def when it cannot prompt).
type InitInput struct {
	Flags  FlagValues
	Ask    func(question, def string) (string, error)
	Getenv func(string) string
}

// Base is the behaviour of a target that needs nothing before its program
// runs, makes no cluster of its own and leaves nothing behind; targets
// embed it and override what they do differently.
type Base struct{}

func (Base) Preflight(context.Context, PreflightInput) (Facts, error) { return Facts{}, nil }
func (Base) Flags() []Flag                                            { return nil }
func (Base) Commands() []Command                                      { return nil }
func (Base) Cluster(*config.Stack) (string, string)                   { return "", "" }
func (Base) SweepNamespaces(_ *config.Stack, appNamespace string) []string {
	return []string{appNamespace}
}
func (Base) Leftovers(context.Context, SweepInput) (*teardown.Receipt, error) {
	return &teardown.Receipt{}, nil
}
func (Base) HasLeftovers() bool                          { return false }
func (Base) InitValues(InitInput) (config.Values, error) { return config.Values{}, nil }
func (Base) TeardownValues(outputs.Record) config.Values { return nil }
func (Base) Plugins(*config.Stack) []engine.Plugin       { return nil }
func (Base) Cost(*config.Stack) *cost.Estimate           { return nil }

// HoldsData: a namespace goes with every volume in it; a volume claim with
// its volume; the in-cluster PostgreSQL's StatefulSet moves to a new volume
// when it is replaced (a new namespace, a new storage class).
func (Base) HoldsData(s engine.Step) string {
	switch {
	case s.Type == "kubernetes:core/v1:Namespace":
		return "the namespace, with every volume in it"
	case s.Type == "kubernetes:core/v1:PersistentVolumeClaim":
		return "the volume claim, with its volume"
	case s.Type == "kubernetes:apps/v1:StatefulSet" && s.Name == "database":
		return "PostgreSQL, whose replacement starts on an empty volume"
	}
	return ""
}

// Registry chooses a stack's target: the one place that does.
type Registry struct {
	byName  map[string]Target
	names   []string
	preview Target
	prelude func(*pulumi.Context) error
}

// NewRegistry registers targets, and each one's config spec with the
// config; preview serves every preview stack, and prelude runs first in
// every program (it may be nil).
func NewRegistry(prelude func(*pulumi.Context) error, preview Target, targets ...Target) *Registry {
	r := &Registry{byName: map[string]Target{}, preview: preview, prelude: prelude}
	for _, t := range targets {
		r.Add(t)
	}
	return r
}

// With is a copy of the registry with one more target, whose spec it
// registers with the config (a test's own target).
func (r *Registry) With(t Target) *Registry {
	c := &Registry{byName: map[string]Target{}, preview: r.preview, prelude: r.prelude, names: append([]string(nil), r.names...)}
	for n, x := range r.byName {
		c.byName[n] = x
	}
	c.Add(t)
	return c
}

// Add registers one more target, at start-up.
func (r *Registry) Add(t Target) {
	if _, dup := r.byName[t.Name()]; dup {
		panic("target: " + t.Name() + " registered twice") // a programming error, at start-up
	}
	if spec := t.Config(); string(spec.Name) != t.Name() {
		panic(fmt.Sprintf("target: %s's config spec is named %q", t.Name(), spec.Name))
	} else {
		config.RegisterTarget(spec)
	}
	r.byName[t.Name()] = t
	r.names = append(r.names, t.Name())
	sort.Strings(r.names)
}

// Flags are the registered targets' flags of command, each name once.
func (r *Registry) Flags(command string) []Flag {
	var out []Flag
	seen := map[string]bool{}
	for _, t := range r.All() {
		for _, f := range t.Flags() {
			if f.Command == command && !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// FlagOwners are the targets that read flag name of command.
func (r *Registry) FlagOwners(command, name string) []string {
	var out []string
	for _, t := range r.All() {
		for _, f := range t.Flags() {
			if f.Command == command && f.Name == name {
				out = append(out, t.Name())
			}
		}
	}
	return out
}

// All are the registered targets, by name.
func (r *Registry) All() []Target {
	out := make([]Target, len(r.names))
	for i, n := range r.names {
		out[i] = r.byName[n]
	}
	return out
}

// Names are the registered targets, for prompts and errors.
func (r *Registry) Names() []string { return append([]string(nil), r.names...) }

// For is cfg's target; an unknown one is a config error naming the known ones.
func (r *Registry) For(cfg *config.Stack) (Target, error) {
	if cfg.Preview != nil && r.preview != nil {
		return r.preview, nil
	}
	if t, ok := r.byName[string(cfg.Target)]; ok {
		return t, nil
	}
	return nil, failure.Newf(failure.Config, "set liftoff:target to one of "+strings.Join(r.names, ", "),
		"liftoff:target %q: not a target this liftoff knows (%s)", cfg.Target, strings.Join(r.names, ", "))
}

// Named is the target called name, for `init` before any config exists.
func (r *Registry) Named(name string) (Target, bool) {
	t, ok := r.byName[name]
	return t, ok
}

// Program is the Pulumi program of cfg's stack. The engine hands a
// program the stack's config with the secrets decrypted, so the program
// parses it again (cfg, read from the stack file, holds no secret's
// plaintext, nor a value liftoff generated just before the run); facts
// carry over unchanged.
func (r *Registry) Program(cfg *config.Stack, facts Facts) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		if vals := Values(ctx); len(vals) > 0 {
			full, err := config.Parse(ctx.Stack(), vals)
			if err != nil {
				return err
			}
			cfg = full
		}
		t, err := r.For(cfg)
		if err != nil {
			return err
		}
		if r.prelude != nil {
			if err := r.prelude(ctx); err != nil {
				return err
			}
		}
		return t.Program(ctx, cfg, facts)
	}
}

// Run is the program for the plain pulumi CLI (Pulumi.yaml): the config
// comes from the engine alone, and no preflight has run.
func (r *Registry) Run(ctx *pulumi.Context) error {
	cfg, err := config.Parse(ctx.Stack(), Values(ctx))
	if err != nil {
		return err
	}
	return r.Program(cfg, Facts{})(ctx)
}

// Values reads every key liftoff knows from the program's config, secrets decrypted.
func Values(ctx *pulumi.Context) config.Values {
	v := config.Values{}
	for _, k := range config.Keys {
		if s, ok := ctx.GetConfig(k.Name); ok {
			v[k.Name] = config.Value{Text: s, Secret: ctx.IsConfigSecret(k.Name), Known: true}
		}
	}
	return v
}
