// Package engine wraps the Pulumi Automation API for liftoff: it finds (or
// installs) the pulumi CLI, points it at liftoff's backend and secrets
// provider, runs inline programs with their events turned into progress, and
// recovers stacks that a killed run left locked or with pending operations.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optremove"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Options configure an Engine.
type Options struct {
	// Dir is the project directory: Pulumi.yaml and Pulumi.<stack>.yaml live there.
	Dir string
	// Home is liftoff's own directory (~/.liftoff): state, CLI and passphrase defaults.
	Home string
	// Backend is the state backend URL; empty means file://<Home>/state.
	Backend string
	// SecretsProvider is used when a stack is created; empty means passphrase.
	SecretsProvider string
	// Getenv reads the environment (os.Getenv outside tests).
	Getenv func(string) string
	// Warn is told about recoveries (stale locks broken, pending operations cleared).
	Warn func(format string, args ...any)
	// Log receives the pulumi CLI's own output, for --verbose.
	Log io.Writer
	// Install allows downloading the pinned CLI when none is found.
	Install bool
}

// Engine runs Pulumi operations for one project.
type Engine struct {
	o       Options
	cmd     auto.PulumiCommand
	cliPath string
	project string
	env     map[string]string

	keysMu sync.Mutex
	keys   map[[2]string]func() (config.Crypter, error) // see crypter
}

// BackendURL returns the backend in effect for o.
func (o Options) BackendURL() string {
	if o.Backend != "" {
		return o.Backend
	}
	return "file://" + filepath.Join(o.Home, "state")
}

// New finds the CLI and prepares the environment for the project in o.Dir.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Warn == nil {
		o.Warn = func(string, ...any) {}
	}
	project, err := projectName(o.Dir)
	if err != nil {
		return nil, err
	}
	path, err := FindCLI(o.Home, o.Getenv)
	if err != nil && o.Install {
		o.Warn("pulumi CLI not found; installing v%s into %s", PulumiVersion, filepath.Join(o.Home, "bin"))
		if _, ierr := auto.InstallPulumiCommand(ctx, &auto.PulumiCommandOptions{Version: semver.MustParse(PulumiVersion), Root: o.Home}); ierr != nil {
			return nil, failure.New(failure.Config, fmt.Errorf("install pulumi CLI: %w", ierr),
				"install pulumi v"+PulumiVersion+" on PATH or into ~/.liftoff/bin (offline: make tools), then rerun")
		}
		path, err = FindCLI(o.Home, o.Getenv)
	}
	if err != nil {
		return nil, err
	}
	cmd, err := commandAt(path, filepath.Join(o.Home, "cache"), o.Log)
	if err != nil {
		return nil, failure.New(failure.Config, fmt.Errorf("pulumi CLI at %s: %w", path, err), "reinstall it: make tools, or remove it so liftoff installs v"+PulumiVersion)
	}
	env, err := environment(o)
	if err != nil {
		return nil, err
	}
	// Plugins come from liftoff's Pulumi home, where liftoff installs the
	// ones it finds next to the CLI or on PATH (InstallPlugin): the engine
	// then never warns that it took one from PATH.
	env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
	// The Kubernetes provider writes the cluster's credentials to a temp
	// kubeconfig on every run and leaves it behind when it is stopped: the
	// engine's temp files go to liftoff's own 0700 directory instead of
	// /tmp, and old ones are swept.
	tmp, err := privateTemp(o.Home, time.Hour)
	if err != nil {
		return nil, err
	}
	env["TMPDIR"] = tmp
	if dir, ok := strings.CutPrefix(o.BackendURL(), "file://"); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, failure.New(failure.Config, fmt.Errorf("state directory %s: %w", dir, err), "pass a writable --backend")
		}
	}
	e := &Engine{o: o, cmd: cmd, cliPath: path, project: project, env: env}
	cmd.exists = e.hasCheckpoint
	return e, nil
}

// Project is the Pulumi project name.
func (e *Engine) Project() string { return e.project }

// Backend returns the backend URL in use.
func (e *Engine) Backend() string { return e.o.BackendURL() }

func projectName(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		return "", failure.New(failure.Config, fmt.Errorf("no Pulumi.yaml in %s", dir), "run liftoff init, or pass --cwd to the project directory")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "name:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`), nil
		}
	}
	return "", failure.Newf(failure.Config, "add a line `name: myproject` to Pulumi.yaml", "%s has no name", filepath.Join(dir, "Pulumi.yaml"))
}

func (e *Engine) workspaceOpts(program pulumi.RunFunc) []auto.LocalWorkspaceOption {
	opts := []auto.LocalWorkspaceOption{
		auto.Pulumi(e.cmd), auto.WorkDir(e.o.Dir), auto.PulumiHome(filepath.Join(e.o.Home, "pulumi")), auto.EnvVars(e.env),
	}
	if e.o.SecretsProvider != "" {
		opts = append(opts, auto.SecretsProvider(e.o.SecretsProvider))
	}
	if program != nil {
		opts = append(opts, auto.Program(program))
	}
	return opts
}

// workspace returns a workspace over the project directory.
func (e *Engine) workspace(ctx context.Context) (auto.Workspace, error) {
	ws, err := auto.NewLocalWorkspace(ctx, e.workspaceOpts(nil)...)
	return ws, classify(err)
}

// Stack opens a stack with an inline program. create allows creating it.
func (e *Engine) Stack(ctx context.Context, name string, program pulumi.RunFunc, create bool) (*Stack, error) {
	if program == nil {
		program = func(*pulumi.Context) error { return errors.New("this command does not run a program") }
	}
	e.repairSidecars()
	var st auto.Stack
	var err error
	if create {
		st, err = auto.UpsertStackInlineSource(ctx, name, e.project, program, e.workspaceOpts(nil)...)
	} else {
		st, err = auto.SelectStackInlineSource(ctx, name, e.project, program, e.workspaceOpts(nil)...)
	}
	if err != nil {
		if auto.IsSelectStack404Error(err) {
			return nil, failure.Newf(failure.NotFound, "list stacks with liftoff stacks ls, or create it with liftoff init --stack "+name,
				"stack %s does not exist in %s", name, e.o.BackendURL())
		}
		return nil, classify(fmt.Errorf("open stack %s: %w", name, err))
	}
	return &Stack{e: e, st: st, name: name}, nil
}

// StackSummary describes one stack for `liftoff stacks ls`.
type StackSummary struct {
	Name             string            `json:"name"`
	LastUpdate       time.Time         `json:"last_update,omitzero"`
	UpdateInProgress bool              `json:"update_in_progress"`
	Resources        int               `json:"resources"`
	Tags             map[string]string `json:"tags,omitempty"`
}

// ListStacks lists the project's stacks in the backend, with their tags.
func (e *Engine) ListStacks(ctx context.Context) ([]StackSummary, error) {
	ws, err := e.workspace(ctx)
	if err != nil {
		return nil, err
	}
	list, err := ws.ListStacks(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("list stacks: %w", err))
	}
	out := make([]StackSummary, 0, len(list))
	for _, s := range list {
		sum := StackSummary{Name: s.Name, UpdateInProgress: s.UpdateInProgress}
		if s.ResourceCount != nil {
			sum.Resources = *s.ResourceCount
		}
		if t, err := time.Parse(time.RFC3339, s.LastUpdate); err == nil {
			sum.LastUpdate = t
		}
		if tags, err := ws.ListTags(ctx, s.Name); err == nil {
			sum.Tags = userTags(tags)
		}
		out = append(out, sum)
	}
	return out, nil
}

// userTags drops the tags Pulumi sets itself.
func userTags(tags map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range tags {
		if !strings.HasPrefix(k, "pulumi:") && !strings.HasPrefix(k, "gitHub:") && !strings.HasPrefix(k, "vcs:") {
			out[k] = v
		}
	}
	return out
}

// RemoveStack deletes a stack's state and its Pulumi.<stack>.yaml.
func (e *Engine) RemoveStack(ctx context.Context, name string, force bool) error {
	ws, err := e.workspace(ctx)
	if err != nil {
		return err
	}
	var opts []optremove.Option
	if force {
		opts = append(opts, optremove.Force())
	}
	if err := ws.RemoveStack(ctx, name, opts...); err != nil {
		return classify(fmt.Errorf("remove stack %s: %w", name, err))
	}
	return nil
}
