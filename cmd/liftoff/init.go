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
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/ui"
	"github.com/liftoff-dev/liftoff/stacks"
)

// InitOptions are the flags of `liftoff init`.
type InitOptions struct {
	f          *Factory
	Target     string
	Project    string
	Kubeconfig string
	Context    string
	Registry   string
	Region     string
	Nodes      []string
	SSHKey     string
	Set        []string
	SetSecret  []string
	PreviewOf  string
}

// NewCmdInit creates a stack for a target.
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	o := &InitOptions{f: f}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a stack for a target: aws, homelab or kubeconfig",
		Long: `Create a stack and write its settings to Pulumi.<stack>.yaml. On a terminal,
init asks for what it needs; otherwise pass flags. Nothing is written unless
every setting is valid.`,
		Example: `  liftoff init --stack dev --target kubeconfig --context kind-dev --registry ghcr.io/acme/shortener
  liftoff init --stack prod --target aws --region eu-west-1
  liftoff init --stack lab --target homelab --node server:root@192.168.1.10 --node agent:root@192.168.1.11 --ssh-key ~/.ssh/id_ed25519`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runInit(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Target, "target", "", "aws, homelab or kubeconfig")
	fl.StringVar(&o.Project, "project", "", "project name when creating Pulumi.yaml (default: the directory's name)")
	fl.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig target: kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&o.Context, "context", "", "kubeconfig target: context in the file (default: its current context)")
	fl.StringVar(&o.Registry, "registry", "", "kubeconfig/homelab: repository to push images to (default: an in-cluster registry)")
	fl.StringVar(&o.Region, "region", "", "aws target: region, e.g. eu-west-1")
	fl.StringArrayVar(&o.Nodes, "node", nil, "homelab target: ROLE:USER@HOST[:PORT], repeatable (role server or agent)")
	fl.StringVar(&o.SSHKey, "ssh-key", "", "homelab target: private key for every node (default: ssh-agent)")
	fl.StringVar(&o.PreviewOf, "preview-of", "", "make the stack a preview of this parent stack: it reuses the parent's cluster and registry")
	fl.StringArrayVar(&o.Set, "set", nil, "any other setting as KEY=VALUE, repeatable (see liftoff config)")
	fl.StringArrayVar(&o.SetSecret, "set-secret", nil, "a secret setting as KEY=VALUE (visible in shell history: prefer liftoff config set --secret)")
	return cmd
}

var nodeFlagRE = regexp.MustCompile(`^(server|agent):(?:([^@]+)@)?([^:@]+)(?::(\d+))?$`)

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
	f.Printer().Result(text, map[string]any{"stack": stack, "target": cfg.Target, "file": config.StackFilePath(dir, stack), "backend": eng.Backend()})
	return nil
}

// values gathers the stack's settings from flags, asking on a terminal for
// what is missing.
func (o *InitOptions) values(stack string) (config.Values, error) {
	f := o.f
	vals := config.Values{}
	if o.Target == "" && f.Interactive() {
		t, err := ui.Choose(f.IO, "Where should the stack run?", stacks.Targets.Names(), string(config.DefaultTarget))
		if err != nil {
			return nil, err
		}
		o.Target = t
	}
	if o.Target == "" {
		return nil, failure.Newf(failure.Config, "pass --target "+strings.Join(stacks.Targets.Names(), ", "), "no target given")
	}
	tg, known := stacks.Targets.Named(o.Target)
	if !known {
		return nil, failure.Newf(failure.Config, "pass --target "+strings.Join(stacks.Targets.Names(), ", "), "--target %q is not a target", o.Target)
	}
	vals["liftoff:target"] = config.Plain(o.Target)
	ask := func(question, def string) (string, error) {
		if !f.Interactive() {
			return def, nil
		}
		return ui.Ask(f.IO, fmt.Sprintf("%s [%s]: ", question, def), def)
	}
	preview := o.PreviewOf != ""
	for _, kv := range o.Set {
		preview = preview || strings.HasPrefix(kv, "previewOf=")
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
	if !preview {
		nodes, err := o.nodes()
		if err != nil {
			return nil, err
		}
		tvals, err := tg.InitValues(target.InitInput{Kubeconfig: o.Kubeconfig, Context: o.Context, Region: o.Region, Nodes: nodes, Ask: ask, Getenv: f.Getenv})
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

func (o *InitOptions) nodes() ([]map[string]any, error) {
	var out []map[string]any
	for i, n := range o.Nodes {
		m := nodeFlagRE.FindStringSubmatch(n)
		if m == nil {
			return nil, failure.Newf(failure.Config, "use --node server:root@192.168.1.10:22", "--node %q (number %d) is not ROLE:USER@HOST[:PORT]", n, i+1)
		}
		node := map[string]any{"role": m[1], "host": m[3]}
		if m[2] != "" {
			node["user"] = m[2]
		}
		if m[4] != "" {
			port, _ := strconv.Atoi(m[4])
			node["port"] = port
		}
		if o.SSHKey != "" {
			node["key"] = o.SSHKey
		}
		out = append(out, node)
	}
	return out, nil
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
