// Package doctor checks the machine for what liftoff needs and says, for each
// missing piece, how to get it.
package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/engine"
)

// Status of a check.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
)

// Result is the outcome of one check.
type Result struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Env is what the checks look at.
type Env struct {
	Dir     string
	Home    string
	Backend string
	Getenv  func(string) string
	// Stack and Plugins are the selected stack and the resource plugins its
	// program loads (none without a stack).
	Stack   string
	Plugins []engine.Plugin
}

// Run performs every check.
func Run(ctx context.Context, e Env) []Result {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rs := []Result{pulumiCLI(ctx, e)}
	rs = append(rs, plugins(e)...)
	return append(rs, backend(e), passphrase(e), goToolchain(ctx), project(e))
}

// plugins reports where the engine will find each plugin the stack needs.
func plugins(e Env) []Result {
	var rs []Result
	cli, err := engine.FindCLI(e.Home, e.Getenv)
	if err != nil {
		cli = ""
	}
	for _, p := range e.Plugins {
		r := Result{Name: fmt.Sprintf("plugin %s %s (stack %s)", p.Name, p.Version, e.Stack)}
		path, how := engine.FindPlugin(p, e.Home, cli, e.Getenv)
		switch {
		case how == "installed":
			r.Status, r.Detail = OK, how+": "+path
		case path != "":
			r.Status, r.Detail = OK, how+": "+path+" (liftoff installs it into its Pulumi home on the next up)"
		case engine.AcquiresPlugins(e.Getenv):
			r.Status, r.Detail = Warn, "not on this machine: the engine downloads it on first use (needs get.pulumi.com)"
			r.Fix = "offline, " + engine.PluginFix(p, cli)
		default:
			r.Status, r.Detail = Fail, "not on this machine, and PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION forbids downloading it"
			r.Fix = engine.PluginFix(p, cli)
		}
		rs = append(rs, r)
	}
	return rs
}

// Failed reports whether any check failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

func pulumiCLI(ctx context.Context, e Env) Result {
	r := Result{Name: "pulumi CLI"}
	path, err := engine.FindCLI(e.Home, e.Getenv)
	if err != nil {
		r.Status, r.Detail = Warn, "not found"
		r.Fix = "liftoff installs v" + engine.PulumiVersion + " into ~/.liftoff/bin on first use when online; offline: make tools"
		return r
	}
	out, err := exec.CommandContext(ctx, path, "version").Output()
	if err != nil {
		r.Status, r.Detail, r.Fix = Fail, fmt.Sprintf("%s does not run: %v", path, err), "reinstall it (make tools) or remove it"
		return r
	}
	v := strings.TrimSpace(string(out))
	r.Status, r.Detail = OK, fmt.Sprintf("%s at %s", v, path)
	if strings.TrimPrefix(v, "v") != engine.PulumiVersion {
		r.Status = Warn
		r.Fix = "liftoff is tested with v" + engine.PulumiVersion
	}
	return r
}

func backend(e Env) Result {
	r := Result{Name: "state backend", Status: OK, Detail: e.Backend}
	dir, ok := engine.FileBackendDir(e.Backend)
	if !ok {
		r.Detail += " (credentials are checked on first use)"
		return r
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		r.Status, r.Fix = Fail, "pass a writable directory with --backend file:///path or LIFTOFF_BACKEND"
		r.Detail += ": " + err.Error()
		return r
	}
	probe := filepath.Join(dir, ".liftoff-doctor")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		r.Status, r.Fix = Fail, "make "+dir+" writable, or choose another --backend"
		r.Detail += ": not writable"
		return r
	}
	os.Remove(probe)
	return r
}

func passphrase(e Env) Result {
	r := Result{Name: "secrets passphrase", Status: OK}
	switch {
	case e.Getenv("LIFTOFF_PASSPHRASE") != "":
		r.Detail = "from LIFTOFF_PASSPHRASE"
	case e.Getenv("LIFTOFF_PASSPHRASE_FILE") != "":
		r.Detail = "from LIFTOFF_PASSPHRASE_FILE=" + e.Getenv("LIFTOFF_PASSPHRASE_FILE")
		if _, err := os.Stat(e.Getenv("LIFTOFF_PASSPHRASE_FILE")); err != nil {
			r.Status, r.Fix = Fail, "point LIFTOFF_PASSPHRASE_FILE at a readable file"
		}
	case e.Getenv("PULUMI_CONFIG_PASSPHRASE") != "" || e.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") != "":
		r.Detail = "from PULUMI_CONFIG_PASSPHRASE(_FILE)"
	default:
		if _, err := os.Stat(engine.PassphraseFile(e.Home)); err == nil {
			r.Detail = "from " + engine.PassphraseFile(e.Home) + " (keep a backup)"
		} else {
			r.Status, r.Detail = Warn, "none yet"
			r.Fix = "liftoff init creates " + engine.PassphraseFile(e.Home) + "; in CI set LIFTOFF_PASSPHRASE from a secret"
		}
	}
	return r
}

func goToolchain(ctx context.Context) Result {
	r := Result{Name: "Go toolchain (for liftoff build)"}
	out, err := exec.CommandContext(ctx, "go", "version").Output()
	if err != nil {
		r.Status, r.Detail, r.Fix = Warn, "go not found", "install Go 1.26 (https://go.dev/dl), or deploy prebuilt images with --image"
		return r
	}
	r.Status, r.Detail = OK, strings.TrimSpace(string(out))
	return r
}

func project(e Env) Result {
	r := Result{Name: "project"}
	if _, err := os.Stat(filepath.Join(e.Dir, "Pulumi.yaml")); err != nil {
		r.Status, r.Detail, r.Fix = Warn, "no Pulumi.yaml in "+e.Dir, "run liftoff init here, or pass --cwd"
		return r
	}
	stacks, _ := filepath.Glob(filepath.Join(e.Dir, "Pulumi.*.yaml"))
	names := make([]string, len(stacks))
	for i, s := range stacks {
		names[i] = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(s), "Pulumi."), ".yaml")
	}
	r.Status, r.Detail = OK, fmt.Sprintf("%s, stacks: %s", e.Dir, strings.Join(names, ", "))
	if len(names) == 0 {
		r.Detail = e.Dir + ", no stacks yet"
		r.Fix = "liftoff init --stack dev"
		r.Status = Warn
	}
	return r
}
