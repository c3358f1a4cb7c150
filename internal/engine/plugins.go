package engine

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// Plugin is a Pulumi resource plugin a program loads.
type Plugin struct {
	Name    string `json:"name"`    // kubernetes, aws, command
	Version string `json:"version"` // what the program's SDK asks for, e.g. 4.25.0
}

// PluginFor is the plugin the Go SDK module sdk (github.com/pulumi/pulumi-
// kubernetes/sdk/v4) that liftoff is built with asks for: its own version.
func PluginFor(name, sdk string) Plugin {
	p := Plugin{Name: name}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == sdk {
				if d.Replace != nil {
					d = d.Replace
				}
				p.Version = strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return p
}

// LocatePlugin is FindPlugin for the engine's home, CLI and environment.
func (e *Engine) LocatePlugin(p Plugin) (path, how string) {
	return FindPlugin(p, e.o.Home, e.cliPath, e.o.Getenv)
}

// FindPlugin looks for a plugin where liftoff takes it from: installed in
// liftoff's Pulumi home (home/pulumi/plugins/resource-NAME-vVERSION, where
// the engine looks, and where it downloads to when online), then next to
// the pulumi CLI (a tools directory holding the CLI and its plugins, as
// make tools builds, or an air-gapped bundle), then on PATH.
func FindPlugin(p Plugin, home, cli string, getenv func(string) string) (path, how string) {
	file := "pulumi-resource-" + p.Name
	if c := filepath.Join(pluginDir(home, p), file); isExecutable(c) {
		return c, "installed"
	}
	if cli != "" {
		if c := filepath.Join(filepath.Dir(cli), file); isExecutable(c) {
			return c, "next to the pulumi CLI"
		}
	}
	path = getenv("PATH")
	if path == "" {
		path = os.Getenv("PATH")
	}
	for _, dir := range filepath.SplitList(path) {
		if c := filepath.Join(dir, file); dir != "" && isExecutable(c) {
			return c, "on PATH"
		}
	}
	return "", ""
}

func pluginDir(home string, p Plugin) string {
	return filepath.Join(home, "pulumi", "plugins", "resource-"+p.Name+"-v"+p.Version)
}

// InstallPlugin installs the plugin binary at from into liftoff's Pulumi
// home, as `pulumi plugin install --file` does, by a symbolic link (the
// Kubernetes plugin is 300 MB): the engine then loads exactly that version,
// with no warning about plugins taken from PATH.
func (e *Engine) InstallPlugin(p Plugin, from string) error {
	abs, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	dir := pluginDir(e.o.Home, p)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Symlink(abs, filepath.Join(tmp, "pulumi-resource-"+p.Name)); err != nil {
		return err
	}
	os.RemoveAll(dir) // a dangling link left by a removed tools directory
	return os.Rename(tmp, dir)
}

// AcquiresPlugins reports whether the engine downloads a missing plugin (it
// does unless PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION is set, as offline).
func AcquiresPlugins(getenv func(string) string) bool {
	v := getenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION")
	return v == "" || v == "0" || strings.EqualFold(v, "false")
}

// AcquiresPlugins is AcquiresPlugins for the engine's environment.
func (e *Engine) AcquiresPlugins() bool { return AcquiresPlugins(e.o.Getenv) }

// PluginFix is how to make a plugin available without a download.
func PluginFix(p Plugin, cli string) string {
	where := "next to the pulumi CLI"
	if cli != "" {
		where += " (" + filepath.Dir(cli) + ")"
	}
	return "put pulumi-resource-" + p.Name + " v" + p.Version + " " + where + " or on PATH, and liftoff installs it on its next run" +
		" (make tools builds it); online, leave PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION unset and the engine downloads it"
}

// PluginFix is PluginFix for the engine's CLI.
func (e *Engine) PluginFix(p Plugin) string { return PluginFix(p, e.cliPath) }
