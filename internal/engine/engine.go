// Package engine wraps the Pulumi Automation API for liftoff: it finds (or
// installs) the pulumi CLI, points it at liftoff's backend and secrets
// provider, runs inline programs with their events turned into progress, and
// recovers stacks that a killed run left locked or with pending operations.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optremove"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
)

// PulumiVersion is the pulumi CLI version liftoff installs and is tested with.
const PulumiVersion = "3.259.0"

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
	cmd, err := commandAt(path)
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
	return &Engine{o: o, cmd: cmd, cliPath: path, project: project, env: env}, nil
}

// Project is the Pulumi project name.
func (e *Engine) Project() string { return e.project }

// CLI returns the path and version of the pulumi CLI in use.
func (e *Engine) CLI() (string, string) { return e.cliPath, e.cmd.Version().String() }

// Backend returns the backend URL in use.
func (e *Engine) Backend() string { return e.o.BackendURL() }

// FindCLI looks for the pulumi CLI: $LIFTOFF_PULUMI, then ~/.liftoff/bin, then PATH.
func FindCLI(home string, getenv func(string) string) (string, error) {
	if p := getenv("LIFTOFF_PULUMI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", failure.New(failure.Config, fmt.Errorf("LIFTOFF_PULUMI=%s: %w", p, err), "point LIFTOFF_PULUMI at a pulumi binary, or unset it")
		}
		return p, nil
	}
	if p := filepath.Join(home, "bin", "pulumi"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return p, nil
	}
	return "", failure.Newf(failure.Config,
		"run liftoff again on a connected machine to install v"+PulumiVersion+" into ~/.liftoff/bin, or build it offline with make tools",
		"pulumi CLI not found (looked at $LIFTOFF_PULUMI, %s, PATH)", filepath.Join(home, "bin", "pulumi"))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// commandAt wraps the CLI at path. The Automation API expects <root>/bin/pulumi,
// so a binary elsewhere gets a private bin directory with a symlink.
func commandAt(path string) (auto.PulumiCommand, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	root := filepath.Dir(filepath.Dir(abs))
	if filepath.Base(filepath.Dir(abs)) != "bin" || filepath.Base(abs) != "pulumi" {
		root, err = os.MkdirTemp("", "liftoff-pulumi")
		if err != nil {
			return nil, err
		}
		if err := os.Mkdir(filepath.Join(root, "bin"), 0o700); err != nil {
			return nil, err
		}
		if err := os.Symlink(abs, filepath.Join(root, "bin", "pulumi")); err != nil {
			return nil, err
		}
	}
	return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: false})
}

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

// PassphraseFile is the default passphrase location, created by liftoff init.
func PassphraseFile(home string) string { return filepath.Join(home, "passphrase") }

// privateTemp is <home>/tmp (mode 0700), with entries older than maxAge removed.
func privateTemp(home string, maxAge time.Duration) (string, error) {
	dir := filepath.Join(home, "tmp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", failure.New(failure.Config, fmt.Errorf("liftoff's temp directory %s: %w", dir, err), "make liftoff's home writable (LIFTOFF_HOME)")
	}
	os.Chmod(dir, 0o700)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > maxAge {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return dir, nil
}

func environment(o Options) (map[string]string, error) {
	env := map[string]string{
		"PULUMI_BACKEND_URL":       o.BackendURL(),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		"PULUMI_HOME":              filepath.Join(o.Home, "pulumi"),
	}
	if o.SecretsProvider != "" && o.SecretsProvider != "passphrase" {
		return env, nil
	}
	switch {
	case o.Getenv("LIFTOFF_PASSPHRASE") != "":
		env["PULUMI_CONFIG_PASSPHRASE"] = o.Getenv("LIFTOFF_PASSPHRASE")
	case o.Getenv("LIFTOFF_PASSPHRASE_FILE") != "":
		env["PULUMI_CONFIG_PASSPHRASE_FILE"] = o.Getenv("LIFTOFF_PASSPHRASE_FILE")
	case o.Getenv("PULUMI_CONFIG_PASSPHRASE") != "" || o.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") != "":
		// The user's own pulumi settings pass through.
	case isFile(PassphraseFile(o.Home)):
		env["PULUMI_CONFIG_PASSPHRASE_FILE"] = PassphraseFile(o.Home)
	default:
		return nil, failure.Newf(failure.Auth,
			"set LIFTOFF_PASSPHRASE or LIFTOFF_PASSPHRASE_FILE (liftoff init creates ~/.liftoff/passphrase on first use)",
			"no passphrase for the stack's secrets")
	}
	return env, nil
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
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

// Workspace returns a workspace over the project directory.
func (e *Engine) Workspace(ctx context.Context) (auto.Workspace, error) {
	ws, err := auto.NewLocalWorkspace(ctx, e.workspaceOpts(nil)...)
	return ws, classify(err)
}

// Stack opens a stack with an inline program. create allows creating it.
func (e *Engine) Stack(ctx context.Context, name string, program pulumi.RunFunc, create bool) (*Stack, error) {
	if program == nil {
		program = func(*pulumi.Context) error { return errors.New("this command does not run a program") }
	}
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
	ws, err := e.Workspace(ctx)
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
	ws, err := e.Workspace(ctx)
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

// Progress receives engine events as they happen. *ui.Printer implements it.
type Progress interface {
	ResourceStarted(urn, typ, name, op string)
	ResourceDone(urn, typ, name, op string, failed bool)
	Diagnostic(severity, msg string)
	SetTotal(n int)
}

// Stack is one stack of the project.
type Stack struct {
	e    *Engine
	st   auto.Stack
	name string
	// Refresh makes Up and Preview read every resource's live state first,
	// so a change made by hand (drift) shows, and up repairs it.
	Refresh bool

	mu        sync.Mutex
	lastError string // the engine's last error diagnostic, for the error message
	steps     []Step // what the last run did or planned, but for unchanged resources
}

// Step is one resource the engine created, updated, replaced, deleted or
// (in a refresh) found changed outside it.
type Step struct {
	Op   string `json:"op"`
	Type string `json:"type"`
	Name string `json:"name"`
}

// Steps are the last run's steps, in order.
func (s *Stack) Steps() []Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Step(nil), s.steps...)
}

// Name is the stack's name.
func (s *Stack) Name() string { return s.name }

// Output is one stack output.
type Output struct {
	Value  any  `json:"value"`
	Secret bool `json:"secret"`
}

// Outputs are a stack's outputs.
type Outputs map[string]Output

// Values returns the outputs' plain values, secrets revealed: for liftoff
// to act on (outputs.Decode), never to print.
func (o Outputs) Values() map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		out[k] = v.Value
	}
	return out
}

// Masked returns the outputs with every secret replaced by "[secret]".
func (o Outputs) Masked() map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		if v.Secret {
			out[k] = "[secret]"
		} else {
			out[k] = v.Value
		}
	}
	return out
}

// String returns a non-secret string output, or "".
func (o Outputs) String(key string) string {
	if v, ok := o[key]; ok && !v.Secret {
		s, _ := v.Value.(string)
		return s
	}
	return ""
}

func outputs(m auto.OutputMap) Outputs {
	out := Outputs{}
	for k, v := range m {
		out[k] = Output{Value: v.Value, Secret: v.Secret}
	}
	return out
}

// Up applies the program. It first recovers what a killed run left behind.
func (s *Stack) Up(ctx context.Context, p Progress) (Outputs, error) {
	outs, _, err := s.UpChanges(ctx, p)
	return outs, err
}

// UpChanges is Up that also counts the steps it took by operation.
func (s *Stack) UpChanges(ctx context.Context, p Progress) (Outputs, Changes, error) {
	if err := s.Recover(ctx); err != nil {
		return nil, nil, err
	}
	s.expectTotal(ctx, p)
	ch, done := s.pump(p)
	opts := []optup.Option{optup.EventStreams(ch), optup.ProgressStreams(s.log()), optup.ErrorProgressStreams(s.log())}
	if s.Refresh {
		opts = append(opts, optup.Refresh())
	}
	res, err := s.st.Up(ctx, opts...)
	drain(done)
	if err != nil {
		return nil, nil, s.failed(ctx, "pulumi up", err)
	}
	c := Changes{}
	if res.Summary.ResourceChanges != nil {
		for op, n := range *res.Summary.ResourceChanges {
			c[op] = n
		}
	}
	return outputs(res.Outputs), c, nil
}

// Changes counts planned or applied steps by operation (create, update, same, ...).
type Changes map[string]int

// HasChanges reports whether any step other than "same" (or a refresh's
// read) is counted.
func (c Changes) HasChanges() bool {
	for op, n := range c {
		if op != "same" && op != "refresh" && n > 0 {
			return true
		}
	}
	return false
}

// Preview plans the program without changing anything.
func (s *Stack) Preview(ctx context.Context, p Progress) (Changes, error) {
	if err := s.Recover(ctx); err != nil {
		return nil, err
	}
	ch, done := s.pump(p)
	opts := []optpreview.Option{optpreview.EventStreams(ch), optpreview.ProgressStreams(s.log()), optpreview.ErrorProgressStreams(s.log())}
	if s.Refresh {
		opts = append(opts, optpreview.Refresh())
	}
	res, err := s.st.Preview(ctx, opts...)
	drain(done)
	if err != nil {
		return nil, s.failed(ctx, "pulumi preview", err)
	}
	c := Changes{}
	for op, n := range res.ChangeSummary {
		c[string(op)] = n
	}
	return c, nil
}

// Destroy deletes every resource of the stack; its state remains until RemoveStack.
func (s *Stack) Destroy(ctx context.Context, p Progress) error {
	if err := s.Recover(ctx); err != nil {
		return err
	}
	s.expectTotal(ctx, p)
	ch, done := s.pump(p)
	_, err := s.st.Destroy(ctx, optdestroy.EventStreams(ch), optdestroy.ProgressStreams(s.log()), optdestroy.ErrorProgressStreams(s.log()))
	drain(done)
	if err != nil {
		return s.failed(ctx, "pulumi destroy", err)
	}
	return nil
}

// failed classifies an operation's error, naming the engine's own error
// diagnostic when the CLI's exit status says nothing more.
func (s *Stack) failed(ctx context.Context, op string, err error) error {
	s.mu.Lock()
	diag := s.lastError
	s.mu.Unlock()
	if diag != "" && ctx.Err() == nil && !strings.Contains(engineMessage(err.Error()), "\n") {
		if cl := classify(err); failure.ClassOf(cl) == failure.Engine {
			return failure.New(failure.Engine, fmt.Errorf("%s: %s", op, diag), failure.FixOf(cl))
		}
	}
	return classifyCtx(ctx, fmt.Errorf("%s: %w", op, err))
}

// Outputs returns the stack's current outputs without running the program.
func (s *Stack) Outputs(ctx context.Context) (Outputs, error) {
	m, err := s.st.Outputs(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("read outputs of %s: %w", s.name, err))
	}
	return outputs(m), nil
}

// LastUpdate describes the most recent operation on the stack.
type LastUpdate struct {
	Kind      string         `json:"kind"`
	Result    string         `json:"result"`
	StartTime time.Time      `json:"start_time"`
	EndTime   time.Time      `json:"end_time,omitzero"`
	Changes   map[string]int `json:"changes,omitempty"`
}

// LastUpdate returns the latest history entry, or nil for a new stack.
func (s *Stack) LastUpdate(ctx context.Context) (*LastUpdate, error) {
	h, err := s.st.History(ctx, 1, 1)
	if err != nil {
		return nil, classify(fmt.Errorf("history of %s: %w", s.name, err))
	}
	if len(h) == 0 {
		return nil, nil
	}
	u := &LastUpdate{Kind: h[0].Kind, Result: h[0].Result}
	u.StartTime, _ = time.Parse(time.RFC3339, h[0].StartTime)
	if h[0].EndTime != nil {
		u.EndTime, _ = time.Parse(time.RFC3339, *h[0].EndTime)
	}
	if h[0].ResourceChanges != nil {
		u.Changes = *h[0].ResourceChanges
	}
	return u, nil
}

// ConfigEntry is one config value to store.
type ConfigEntry struct {
	Value  string
	Secret bool
	// Object marks Value as the JSON of a list or object, stored structured.
	Object bool
}

// SetConfig stores one config value; path treats key as a property path
// ("liftoff:nodes[0].host"). Secrets reach the CLI on stdin, never in its
// arguments, where other users of the machine could read them.
func (s *Stack) SetConfig(ctx context.Context, key string, e ConfigEntry, path bool) error {
	if e.Object {
		return s.SetConfigs(ctx, map[string]ConfigEntry{key: e})
	}
	args := []string{"config", "set", "--stack", s.name}
	if path {
		args = append(args, "--path")
	}
	if e.Secret {
		return s.run(ctx, strings.NewReader(e.Value), append(args, key, "--secret")...)
	}
	return s.run(ctx, nil, append(args, key, "--plaintext", "--", e.Value)...)
}

// SetConfigs stores several values: plain ones in one call, objects as JSON,
// secrets one by one on stdin.
func (s *Stack) SetConfigs(ctx context.Context, entries map[string]ConfigEntry) error {
	plain := []string{"config", "set-all", "--stack", s.name}
	objects := map[string]any{}
	for k, e := range entries {
		switch {
		case e.Secret:
			if err := s.SetConfig(ctx, k, ConfigEntry{Value: e.Value, Secret: true}, false); err != nil {
				return err
			}
		case e.Object:
			var v any
			if err := json.Unmarshal([]byte(e.Value), &v); err != nil {
				return failure.Newf(failure.Config, "pass a JSON list or object", "config %s: %v", k, err)
			}
			objects[k] = map[string]any{"value": e.Value, "objectValue": v, "secret": false}
		default:
			plain = append(plain, "--plaintext", k+"="+e.Value)
		}
	}
	if len(plain) > 4 {
		if err := s.run(ctx, nil, plain...); err != nil {
			return err
		}
	}
	if len(objects) > 0 {
		b, _ := json.Marshal(objects)
		return s.run(ctx, nil, "config", "set-all", "--stack", s.name, "--json", string(b))
	}
	return nil
}

// run invokes the pulumi CLI directly in the project directory.
func (s *Stack) run(ctx context.Context, stdin io.Reader, args ...string) error {
	env := make([]string, 0, len(s.e.env))
	for k, v := range s.e.env {
		env = append(env, k+"="+v)
	}
	stdout, stderr, code, err := s.e.cmd.Run(ctx, s.e.o.Dir, stdin, nil, nil, env, args...)
	if err != nil {
		return classify(fmt.Errorf("pulumi %s: %w\ncode: %d\nstdout: %s\nstderr: %s", strings.Join(args[:2], " "), err, code, stdout, stderr))
	}
	return nil
}

// GetConfig reads one config value, decrypting secrets.
func (s *Stack) GetConfig(ctx context.Context, key string, path bool) (string, bool, error) {
	v, err := s.st.GetConfigWithOptions(ctx, key, &auto.ConfigOptions{Path: path})
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return "", false, failure.Newf(failure.NotFound, "list keys with liftoff config get", "config key %s is not set on stack %s", key, s.name)
		}
		return "", false, classify(fmt.Errorf("get config %s: %w", key, err))
	}
	return v.Value, v.Secret, nil
}

// AllConfig reads every config value, decrypting secrets.
func (s *Stack) AllConfig(ctx context.Context) (map[string]auto.ConfigValue, error) {
	m, err := s.st.GetAllConfig(ctx)
	return m, classify(wrap("read config", err))
}

// RemoveConfig deletes one config key.
func (s *Stack) RemoveConfig(ctx context.Context, key string, path bool) error {
	return classify(wrap("remove config "+key, s.st.RemoveConfigWithOptions(ctx, key, &auto.ConfigOptions{Path: path})))
}

// SetTag sets a stack tag (previews carry their parent and expiry this way).
func (s *Stack) SetTag(ctx context.Context, key, value string) error {
	return classify(wrap("set tag "+key, s.st.SetTag(ctx, key, value)))
}

// Tags returns the stack's user tags.
func (s *Stack) Tags(ctx context.Context) (map[string]string, error) {
	t, err := s.st.ListTags(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("list tags: %w", err))
	}
	return userTags(t), nil
}

func (s *Stack) log() io.Writer {
	if s.e.o.Log != nil {
		return s.e.o.Log
	}
	return io.Discard
}

// expectTotal sets the progress total to the resource count of the last update.
func (s *Stack) expectTotal(ctx context.Context, p Progress) {
	if u, err := s.LastUpdate(ctx); err == nil && u != nil {
		n := 0
		for _, c := range u.Changes {
			n += c
		}
		if n > 0 && p != nil {
			p.SetTotal(n)
		}
	}
}

// drain waits for the event pump to finish. The Automation API closes the
// channel only when the CLI connected to its event server; a CLI that failed
// before (a locked stack) never does, so the wait is bounded.
func drain(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// pump forwards engine events to p until the operation closes the channel.
func (s *Stack) pump(p Progress) (chan events.EngineEvent, chan struct{}) {
	ch := make(chan events.EngineEvent, 64)
	done := make(chan struct{})
	s.mu.Lock()
	s.lastError, s.steps = "", nil
	s.mu.Unlock()
	go func() {
		defer close(done)
		for ev := range ch {
			if pre := ev.ResourcePreEvent; pre != nil && pre.Metadata.Type != "pulumi:pulumi:Stack" && pre.Metadata.Op != "same" {
				s.mu.Lock()
				s.steps = append(s.steps, Step{Op: string(pre.Metadata.Op), Type: pre.Metadata.Type, Name: urnName(pre.Metadata.URN)})
				s.mu.Unlock()
			}
			if d := ev.DiagnosticEvent; d != nil && d.Severity == "error" && !strings.HasPrefix(strings.TrimSpace(d.Message), "update failed") {
				s.mu.Lock()
				if s.lastError == "" {
					s.lastError = strings.TrimSpace(stripANSI(d.Message))
					if d.URN != "" {
						s.lastError = urnName(d.URN) + ": " + s.lastError
					}
				}
				s.mu.Unlock()
			}
			if p != nil {
				forward(ev, p)
			}
		}
	}()
	return ch, done
}

func forward(ev events.EngineEvent, p Progress) {
	switch {
	case ev.ResourcePreEvent != nil:
		m := ev.ResourcePreEvent.Metadata
		if m.Type == "pulumi:pulumi:Stack" {
			return
		}
		p.ResourceStarted(m.URN, m.Type, urnName(m.URN), string(m.Op))
	case ev.ResOutputsEvent != nil:
		m := ev.ResOutputsEvent.Metadata
		if m.Type == "pulumi:pulumi:Stack" {
			return
		}
		p.ResourceDone(m.URN, m.Type, urnName(m.URN), string(m.Op), false)
	case ev.ResOpFailedEvent != nil:
		m := ev.ResOpFailedEvent.Metadata
		p.ResourceDone(m.URN, m.Type, urnName(m.URN), string(m.Op), true)
	case ev.DiagnosticEvent != nil:
		d := ev.DiagnosticEvent
		if d.Ephemeral || d.Severity == "debug" {
			return
		}
		msg := strings.TrimSpace(stripANSI(d.Message))
		if d.URN != "" {
			msg = urnName(d.URN) + ": " + msg
		}
		p.Diagnostic(d.Severity, msg)
	}
}

func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && !(s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	// Pulumi's own colour markup: <{%reset%}>, <{%fg 1%}>...
	out := b.String()
	for {
		i := strings.Index(out, "<{%")
		if i < 0 {
			return out
		}
		j := strings.Index(out[i:], "%}>")
		if j < 0 {
			return out
		}
		out = out[:i] + out[i+j+3:]
	}
}

// Recover clears what an interrupted or killed run left: Pulumi locks of dead
// processes on this host, and pending operations (cleared through refresh).
func (s *Stack) Recover(ctx context.Context) error {
	if err := s.breakStaleEngineLocks(); err != nil {
		return err
	}
	var state struct {
		Pending []struct {
			Type     string `json:"type"`
			Resource struct {
				URN string `json:"urn"`
			} `json:"resource"`
		} `json:"pending_operations"`
	}
	if err := s.readState(ctx, &state); err != nil {
		return err
	}
	if len(state.Pending) == 0 {
		return nil
	}
	for _, op := range state.Pending {
		s.e.o.Warn("an interrupted run left %s %s pending; refreshing to resolve it", op.Type, op.Resource.URN)
	}
	if _, err := s.st.Refresh(ctx, optrefresh.ClearPendingCreates(), optrefresh.ProgressStreams(s.log()), optrefresh.ErrorProgressStreams(s.log())); err != nil {
		return classifyCtx(ctx, fmt.Errorf("refresh to clear pending operations: %w", err))
	}
	for _, op := range state.Pending {
		if op.Type == "creating" {
			s.e.o.Warn("%s may exist outside state: check for it, or let `liftoff destroy` sweep it by tag", op.Resource.URN)
		}
	}
	return nil
}

// readState exports the stack's state and decodes the parts v names; an
// empty state leaves v as it is.
func (s *Stack) readState(ctx context.Context, v any) error {
	dep, err := s.st.Export(ctx)
	if err != nil {
		return classify(fmt.Errorf("read state of %s: %w", s.name, err))
	}
	if len(dep.Deployment) > 0 {
		if err := json.Unmarshal(dep.Deployment, v); err != nil {
			return failure.New(failure.Engine, fmt.Errorf("parse state of %s: %w", s.name, err), "")
		}
	}
	return nil
}

// StateResource is one resource in a stack's state.
type StateResource struct {
	Type string `json:"type"`
	Name string `json:"name"`
	URN  string `json:"urn"`
	// ID is the provider's id of the resource (namespace/name for a
	// Kubernetes object); empty for a component.
	ID string `json:"id,omitempty"`
}

// Resources lists what the stack's state holds, without the stack itself,
// its providers and what it only reads (stack references): what a destroy
// still has to delete.
func (s *Stack) Resources(ctx context.Context) ([]StateResource, error) {
	var state struct {
		Resources []struct {
			URN      string `json:"urn"`
			Type     string `json:"type"`
			ID       string `json:"id"`
			External bool   `json:"external"`
		} `json:"resources"`
	}
	if err := s.readState(ctx, &state); err != nil {
		return nil, err
	}
	var out []StateResource
	for _, r := range state.Resources {
		if r.External || r.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(r.Type, "pulumi:providers:") {
			continue
		}
		out = append(out, StateResource{Type: r.Type, Name: urnName(r.URN), URN: r.URN, ID: r.ID})
	}
	return out, nil
}

// EngineLockDir is where the Pulumi file backend keeps this stack's locks.
func (s *Stack) EngineLockDir() (string, bool) {
	dir, ok := FileBackendDir(s.e.o.BackendURL())
	if !ok {
		return "", false
	}
	return filepath.Join(dir, ".pulumi", "locks", "organization", s.e.project, s.name), true
}

func (s *Stack) breakStaleEngineLocks() error {
	dir, ok := s.EngineLockDir()
	if !ok {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // no locks
	}
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		h, err := readEngineLock(p)
		if err != nil || lock.Alive(h) {
			continue
		}
		if err := os.Remove(p); err == nil {
			s.e.o.Warn("removed a pulumi lock left by %s: that process is gone", h)
		}
	}
	return nil
}

// BreakEngineLocks removes every Pulumi lock of the stack, for `liftoff cancel`.
func (s *Stack) BreakEngineLocks() ([]lock.Holder, error) {
	dir, ok := s.EngineLockDir()
	if !ok {
		if err := s.st.Cancel(context.Background()); err != nil {
			return nil, classify(fmt.Errorf("cancel: %w", err))
		}
		return nil, nil
	}
	entries, _ := os.ReadDir(dir)
	var out []lock.Holder
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		if h, err := readEngineLock(p); err == nil {
			out = append(out, h)
		}
		if err := os.Remove(p); err != nil {
			return out, err
		}
	}
	return out, nil
}

func readEngineLock(path string) (lock.Holder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return lock.Holder{}, err
	}
	var c struct {
		Pid       int       `json:"pid"`
		Username  string    `json:"username"`
		Hostname  string    `json:"hostname"`
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return lock.Holder{}, err
	}
	return lock.Holder{User: c.Username, Host: c.Hostname, PID: c.Pid, Since: c.Timestamp, Command: "pulumi"}, nil
}

// FileBackendDir returns the directory of a file:// backend.
func FileBackendDir(backend string) (string, bool) {
	u, err := url.Parse(backend)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = u.Host + p // file://relative/path
	}
	if strings.HasPrefix(p, "~") {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, p[1:])
	}
	return p, true
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

func classifyCtx(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return failure.New(failure.Interrupted, fmt.Errorf("interrupted: %w", ctx.Err()), "rerun the command: liftoff recovers the stack")
	}
	return classify(err)
}

// classify turns an Automation API error into a classified, readable one.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	msg := err.Error()
	short := engineMessage(msg)
	switch {
	case auto.IsConcurrentUpdateError(err) || strings.Contains(msg, "the stack is currently locked"):
		return failure.New(failure.Locked, errors.New(short), "wait for the other run, pass --lock-wait 5m, or break a dead run's lock with liftoff cancel")
	case strings.Contains(msg, "incorrect passphrase") || strings.Contains(msg, "passphrase must be set") ||
		strings.Contains(msg, "PULUMI_CONFIG_PASSPHRASE"):
		return failure.New(failure.Auth, errors.New("the passphrase does not open this stack's secrets"), "set LIFTOFF_PASSPHRASE (or LIFTOFF_PASSPHRASE_FILE) to the passphrase the stack was created with")
	case strings.Contains(msg, "no stack named") || strings.Contains(msg, "no stack found"):
		return failure.New(failure.NotFound, errors.New(short), "list stacks with liftoff stacks ls")
	}
	return failure.New(failure.Engine, errors.New(short), "see the diagnostics above; rerun with --verbose for the engine's full output")
}

// engineMessage keeps the error lines of the CLI's stderr and drops the
// Automation API's dump of both streams.
func engineMessage(msg string) string {
	head, rest, found := strings.Cut(msg, "\ncode:")
	if !found {
		return msg
	}
	var lines []string
	if _, stderr, ok := strings.Cut(rest, "\nstderr:"); ok {
		for _, l := range strings.Split(stderr, "\n") {
			l = strings.TrimSpace(stripANSI(l))
			if strings.HasPrefix(l, "error:") {
				lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "error:")))
			} else if len(lines) > 0 && l != "" && len(lines) < 8 {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return head
	}
	before, _, _ := strings.Cut(head, ":")
	return before + ": " + strings.Join(lines, "\n  ")
}
