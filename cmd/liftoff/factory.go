package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/atomicfile"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// Factory carries what every command needs; tests substitute any part.
type Factory struct {
	IO     *ui.Streams
	Getenv func(string) string
	Now    func() time.Time
	// Heartbeat overrides the printer's heartbeat interval (tests).
	Heartbeat time.Duration
	// Targets are the targets the CLI serves (nil: stacks.Targets).
	Targets *target.Registry

	Global GlobalOptions

	printerOnce sync.Once
	printer     *ui.Printer
}

// GlobalOptions are the flags every command accepts.
type GlobalOptions struct {
	Stack           string
	Cwd             string
	JSON            bool
	Yes             bool
	Verbose         bool
	Backend         string
	SecretsProvider string
}

// Printer is the run's single writer to stdout and stderr.
func (f *Factory) Printer() *ui.Printer {
	f.printerOnce.Do(func() {
		f.printer = ui.NewPrinter(f.IO, ui.Options{JSON: f.Global.JSON, Verbose: f.Global.Verbose, Now: f.Now, Heartbeat: f.Heartbeat})
	})
	return f.printer
}

// Dir is the project directory.
func (f *Factory) Dir() string {
	if f.Global.Cwd != "" {
		return f.Global.Cwd
	}
	d, _ := os.Getwd()
	return d
}

// Home is liftoff's own directory: $LIFTOFF_HOME or ~/.liftoff.
func (f *Factory) Home() string {
	if h := f.Getenv("LIFTOFF_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".liftoff"
	}
	return filepath.Join(home, ".liftoff")
}

// Backend is the state backend URL from --backend, $LIFTOFF_BACKEND or the
// engine's default under liftoff's home.
func (f *Factory) Backend() string {
	b := f.Global.Backend
	if b == "" {
		b = f.Getenv("LIFTOFF_BACKEND")
	}
	return engine.Options{Home: f.Home(), Backend: b}.BackendURL()
}

// Interactive reports whether liftoff may prompt.
func (f *Factory) Interactive() bool {
	return f.IO.CanPrompt() && !f.Global.JSON
}

// StackName resolves the stack: --stack, $LIFTOFF_STACK, or the project's only stack file.
func (f *Factory) StackName() (string, error) {
	if f.Global.Stack != "" {
		return f.Global.Stack, nil
	}
	if s := f.Getenv("LIFTOFF_STACK"); s != "" {
		return s, nil
	}
	files, _ := filepath.Glob(filepath.Join(f.Dir(), "Pulumi.*.yaml"))
	if len(files) == 1 {
		return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(files[0]), "Pulumi."), ".yaml"), nil
	}
	names := make([]string, len(files))
	for i, p := range files {
		names[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "Pulumi."), ".yaml")
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "", failure.Newf(failure.Config, "create one with liftoff init --stack dev", "no stack in %s", f.Dir())
	}
	return "", failure.Newf(failure.Config, "pass --stack NAME or set LIFTOFF_STACK", "several stacks here (%s): which one?", strings.Join(names, ", "))
}

// StackConfig reads and validates the stack's config from its stack file.
// Nothing has touched the engine when this fails.
func (f *Factory) StackConfig() (*config.Stack, error) {
	name, err := f.StackName()
	if err != nil {
		return nil, err
	}
	return f.stackConfig(name)
}

// stackConfig reads and validates stack name's settings file.
func (f *Factory) stackConfig(name string) (*config.Stack, error) {
	vals, err := config.ReadStackFile(f.Dir(), name)
	if errors.Is(err, config.ErrNoStackFile) {
		return nil, failure.Newf(failure.NotFound, fmt.Sprintf("run liftoff init --stack %s (or pass --cwd to the project)", name),
			"stack %s has no settings file %s", name, config.StackFilePath(f.Dir(), name))
	}
	if err != nil {
		return nil, failure.New(failure.Config, err, "fix the YAML, or recreate it with liftoff init")
	}
	cfg, err := config.Parse(name, vals)
	if err != nil {
		return nil, failure.New(failure.Config, err, "")
	}
	return cfg, nil
}

// TeardownConfig is the stack's config for destroy and gc: from its
// settings file, or when that is not here, from what the backend recorded
// (launch.RecordedConfig).
func (f *Factory) TeardownConfig(ctx context.Context) (*config.Stack, error) {
	name, err := f.StackName()
	if err != nil {
		return nil, err
	}
	return f.teardownConfig(ctx, name)
}

func (f *Factory) teardownConfig(ctx context.Context, name string) (*config.Stack, error) {
	cfg, err := f.stackConfig(name)
	if failure.ClassOf(err) != failure.NotFound {
		return cfg, err
	}
	eng, eerr := f.Engine(ctx)
	if eerr != nil {
		return nil, eerr
	}
	rcfg, ok, rerr := launch.RecordedConfig(ctx, eng, f.targets(), name)
	if !ok {
		return nil, err // neither here nor in the backend: the settings-file error says what to do
	}
	if rerr != nil {
		return nil, rerr
	}
	f.Printer().Infof("stack %s has no settings file here: tearing it down from what the backend recorded", name)
	return rcfg, nil
}

// OpenedStack is the current stack with what its program recorded.
type OpenedStack struct {
	Config  *config.Stack
	Engine  *engine.Engine
	Stack   *engine.Stack
	Outputs engine.Outputs
}

// OpenStack opens the current (existing) stack and reads its outputs.
func (f *Factory) OpenStack(ctx context.Context) (*OpenedStack, error) {
	cfg, err := f.StackConfig()
	if err != nil {
		return nil, err
	}
	eng, err := f.Engine(ctx)
	if err != nil {
		return nil, err
	}
	st, err := eng.Stack(ctx, cfg.Name, nil, false)
	if err != nil {
		return nil, err
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return nil, err
	}
	return &OpenedStack{Config: cfg, Engine: eng, Stack: st, Outputs: outs}, nil
}

// Engine opens the Pulumi engine for the project.
func (f *Factory) Engine(ctx context.Context) (*engine.Engine, error) {
	p := f.Printer()
	o := engine.Options{
		Dir: f.Dir(), Home: f.Home(), Backend: f.Backend(), SecretsProvider: f.Global.SecretsProvider,
		Getenv: f.Getenv, Warn: p.Warnf, Install: true,
	}
	if f.Global.Verbose && !f.Global.JSON {
		o.Log = f.IO.Err
	}
	return engine.New(ctx, o)
}

// LockDir is where stack locks live: beside the state on a file backend,
// under ~/.liftoff otherwise (the engine's own lock still guards the state
// on shared backends).
func (f *Factory) LockDir() string {
	if dir, ok := engine.FileBackendDir(f.Backend()); ok {
		return filepath.Join(dir, ".liftoff", "locks")
	}
	return filepath.Join(f.Home(), "locks")
}

// LockPath is where the stack lock of project/stack lives.
func (f *Factory) LockPath(project, stack string) string {
	return launch.StackLock{Dir: f.LockDir()}.Path(project, stack)
}

// Confirm asks a yes/no question, or requires --yes when liftoff cannot prompt.
func (f *Factory) Confirm(question string) error {
	if f.Global.Yes {
		return nil
	}
	if !f.Interactive() {
		return failure.Newf(failure.Config, "pass --yes to confirm non-interactively", "%s needs confirmation, and this session cannot prompt", question)
	}
	ans, err := ui.Ask(f.IO, question+" [y/N] ", "")
	if err != nil {
		return err
	}
	if a := strings.ToLower(strings.TrimSpace(ans)); a != "y" && a != "yes" {
		return failure.Newf(failure.Interrupted, "", "cancelled: %s", question)
	}
	return nil
}

// EnsurePassphrase creates ~/.liftoff/passphrase when the stack uses passphrase
// secrets and no passphrase is configured, and says so.
func (f *Factory) EnsurePassphrase() error {
	if f.Global.SecretsProvider != "" && f.Global.SecretsProvider != "passphrase" {
		return nil
	}
	for _, k := range []string{"LIFTOFF_PASSPHRASE", "LIFTOFF_PASSPHRASE_FILE", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} {
		if f.Getenv(k) != "" {
			return nil
		}
	}
	path := engine.PassphraseFile(f.Home())
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	// Under the file's lock, and only when still missing: two first runs at
	// once must not each make a passphrase and encrypt with the one that
	// loses. Written whole or not at all.
	created := false
	err := atomicfile.Update(path, 0o600, func(_ []byte, exists bool) ([]byte, error) {
		if exists {
			return nil, nil
		}
		buf := make([]byte, 32)
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		created = true
		return []byte(base64.RawURLEncoding.EncodeToString(buf) + "\n"), nil
	})
	if err != nil || !created {
		return err
	}
	f.Printer().Warnf("created %s to encrypt stack secrets: back it up; without it the secrets cannot be read", path)
	return nil
}

// exactArgs is cobra.ExactArgs with a classified error.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return failure.Newf(failure.Config, "usage: "+cmd.CommandPath()+" "+usage, "%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func rangeArgs(lo, hi int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return failure.Newf(failure.Config, "usage: "+cmd.CommandPath()+" "+usage, "%s takes %d to %d arguments, got %d", cmd.CommandPath(), lo, hi, len(args))
		}
		return nil
	}
}
