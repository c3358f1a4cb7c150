// Package hostscript is the shell liftoff runs on the user's own machines
// over SSH: the embedded scripts (preflight, install, uninstall, kubeconfig)
// and how a script is fed to a root shell. The k3s component runs them from
// its Pulumi commands, and homelab preflight runs them before any of that.
package hostscript

import (
	"embed"
	"fmt"
	"maps"
	"slices"
	"strings"
)

//go:embed scripts/*.sh
var scripts embed.FS

// Script returns an embedded script by name ("install.sh").
func Script(name string) string {
	b, err := scripts.ReadFile("scripts/" + name)
	if err != nil {
		panic("k3s: no embedded script " + name) // a build-time constant, never user input
	}
	return string(b)
}

// Quote quotes s for a POSIX shell.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Stdin is what a script's shell reads: the sudo password line when sudo
// needs one, the inputs as exported variables, then the script. Secrets
// travel here, never on a command line other users could read in ps.
func Stdin(sudoPassword string, env map[string]string, script string) string {
	var b strings.Builder
	if sudoPassword != "" {
		b.WriteString(sudoPassword + "\n")
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(&b, "export %s=%s\n", k, Quote(env[k]))
	}
	b.WriteString(script)
	return b.String()
}

// SudoLine is the password line Stdin starts with: only when sudo will read
// it (root runs bash directly, which would execute the line).
func SudoLine(user, password string) string {
	if user == "root" {
		return ""
	}
	return password
}

// Shell is the command that runs a script read from stdin, as root.
func Shell(user string, sudoPassword bool) string {
	switch {
	case user == "root":
		return "bash -s"
	case sudoPassword:
		return "sudo -S -p '' bash -s"
	}
	return "sudo -n bash -s"
}
