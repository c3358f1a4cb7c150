package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// InitOptions are the flags of `liftoff init`.
type InitOptions struct {
	f         *Factory
	Target    string
	Project   string
	Registry  string
	Set       []string
	SetSecret []string
	PreviewOf string
	// TargetFlags are the values of the flags only a target reads.
	TargetFlags target.FlagValues
}

// NewCmdInit creates a stack for a target.
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	o := &InitOptions{f: f}
	var tflags *targetFlags
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a stack for a target: " + strings.Join(f.targets().Names(), ", "),
		Long: `Create a stack and write its settings to Pulumi.<stack>.yaml. On a terminal,
init asks for what it needs; otherwise pass flags. Nothing is written unless
every setting is valid.

Targets: ` + targetSummaries(f.targets()) + `.`,
		Example: `  liftoff init --stack dev --target kubeconfig --context kind-dev --registry ghcr.io/acme/shortener
  liftoff init --stack prod --target aws --region eu-west-1
  liftoff init --stack lab --target homelab --node server:root@192.168.1.10 --node agent:root@192.168.1.11 --ssh-key ~/.ssh/id_ed25519`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TargetFlags = tflags.Given()
			if runF != nil {
				return runF(o)
			}
			return runInit(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Target, "target", "", strings.Join(f.targets().Names(), ", "))
	fl.StringVar(&o.Project, "project", "", "project name when creating Pulumi.yaml (default: the directory's name)")
	fl.StringVar(&o.Registry, "registry", "", "repository to push images to, for targets that run a registry in the cluster (default: an in-cluster registry)")
	tflags = registerTargetFlags(f.targets(), target.CommandInit, fl)
	fl.StringVar(&o.PreviewOf, "preview-of", "", "make the stack a preview of this parent stack: it reuses the parent's cluster and registry")
	fl.StringArrayVar(&o.Set, "set", nil, "any other setting as KEY=VALUE, repeatable (see liftoff config)")
	fl.StringArrayVar(&o.SetSecret, "set-secret", nil, "a secret setting as KEY=VALUE (visible in shell history: prefer liftoff config set --secret)")
	return cmd
}

func runInit(ctx context.Context, o *InitOptions) error {
	f := o.f
	stack := f.Global.Stack
	if stack == "" {
		stack = f.Getenv("LIFTOFF_STACK")
	}
	if stack == "" {
		stack = "dev"
	}
	dir := f.Dir()
	if _, err := os.Stat(config.StackFilePath(dir, stack)); err == nil {
		return failure.Newf(failure.Config, "change settings with liftoff config set, or pick another --stack",
			"stack %s is already initialised in %s", stack, config.StackFilePath(dir, stack))
	}
	if err := o.resolveTarget(); err != nil {
		return err
	}
	vals, err := o.values(stack)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(stack, vals)
	if err != nil {
		return failure.New(failure.Config, err, "nothing was written; fix the flags and rerun")
	}

	// Every check passed: now write, and undo on failure.
	var created []string
	undo := func() {
		for _, p := range created {
			os.Remove(p)
		}
	}
	projectFile := filepath.Join(dir, "Pulumi.yaml")
	if _, err := os.Stat(projectFile); errors.Is(err, os.ErrNotExist) {
		name := o.Project
		if name == "" {
			name = sanitizeProject(filepath.Base(dir))
		}
		body := fmt.Sprintf("name: %q\nruntime: go\ndescription: Shipped with liftoff\n", name)
		if err := os.WriteFile(projectFile, []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", projectFile, err)
		}
		created = append(created, projectFile)
	}
	if err := f.EnsurePassphrase(); err != nil {
		undo()
		return err
	}
	eng, err := f.Engine(ctx)
	if err == nil {
		err = launch.CreateStack(ctx, eng, stack, vals, f.Printer())
	}
	if err != nil {
		undo()
		return err
	}
	text := fmt.Sprintf("Initialised stack %s (%s) in %s\nnext: liftoff preview, then liftoff up", stack, cfg.Target, config.StackFilePath(dir, stack))
	f.Printer().Result(text, initResult{Stack: stack, Target: string(cfg.Target), File: config.StackFilePath(dir, stack), Backend: eng.Backend()})
	return nil
}

// resolveTarget settles the target (asking on a terminal when none is
// given), refusing flags that only other targets read.
func (o *InitOptions) resolveTarget() error {
	f := o.f
	names := f.targets().Names()
	if o.Target == "" && f.Interactive() {
		t, err := ui.Choose(f.IO, "Where should the stack run?", names, config.DefaultTarget())
		if err != nil {
			return err
		}
		o.Target = t
	}
	if o.Target == "" {
		return failure.Newf(failure.Config, "pass --target "+strings.Join(names, ", "), "no target given")
	}
	if _, known := f.targets().Named(o.Target); !known {
		return failure.Newf(failure.Config, "pass --target "+strings.Join(names, ", "), "--target %q is not a target", o.Target)
	}
	return checkTargetFlags(f.targets(), target.CommandInit, o.TargetFlags, o.Target, o.preview())
}

// preview reports whether the stack will be a preview of another.
func (o *InitOptions) preview() bool {
	preview := o.PreviewOf != ""
	for _, kv := range o.Set {
		preview = preview || strings.HasPrefix(kv, "previewOf=")
	}
	return preview
}

// values gathers the stack's settings from flags, asking on a terminal for
// what is missing.
func (o *InitOptions) values(stack string) (config.Values, error) {
	f := o.f
	vals := config.Values{}
	tg, _ := f.targets().Named(o.Target)
	vals["liftoff:target"] = config.Plain(o.Target)
	ask := func(question, def string) (string, error) {
		if !f.Interactive() {
			return def, nil
		}
		return ui.Ask(f.IO, fmt.Sprintf("%s [%s]: ", question, def), def)
	}
	if o.PreviewOf != "" {
		vals["liftoff:previewOf"] = config.Plain(o.PreviewOf)
		if pvals, err := config.ReadStackFile(f.Dir(), o.PreviewOf); err == nil {
			for _, k := range launch.InheritedSettings {
				if v, ok := pvals[k]; ok {
					vals[k] = v
				}
			}
		}
	}
	// A preview's cluster and registry come from its parent's outputs.
	if !o.preview() {
		tvals, err := tg.InitValues(target.InitInput{Flags: o.TargetFlags, Ask: ask, Getenv: f.Getenv})
		if err != nil {
			return nil, err
		}
		maps.Copy(vals, tvals)
	}
	if o.Registry != "" {
		vals["liftoff:registry"] = config.Plain(o.Registry)
	}
	for _, kv := range o.Set {
		if err := setKV(vals, kv, false); err != nil {
			return nil, err
		}
	}
	for _, kv := range o.SetSecret {
		if err := setKV(vals, kv, true); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func setKV(vals config.Values, kv string, secret bool) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return failure.Newf(failure.Config, "use KEY=VALUE", "setting %q has no '='", redactKV(kv, secret))
	}
	key := config.FullName(k)
	if secret {
		vals[key] = config.SecretValue(v)
	} else {
		vals[key] = config.Plain(v)
	}
	return nil
}

func redactKV(kv string, secret bool) string {
	if secret {
		k, _, _ := strings.Cut(kv, "=")
		return k + "=[secret]"
	}
	return kv
}

func sanitizeProject(s string) string {
	s = strings.ToLower(s)
	s = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(s, "-")
	s = strings.Trim(s, "-")
	if s == "" {
		return "app"
	}
	return s
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// initResult is the stack init created, and where.
type initResult struct {
	Stack   string `json:"stack"`
	Target  string `json:"target"`
	File    string `json:"file"`
	Backend string `json:"backend"`
}
