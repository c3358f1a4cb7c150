package homelab

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/homelab/preflight"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

var commandPlugin = engine.PluginFor("command", "github.com/pulumi/pulumi-command/sdk")

// Target is the homelab target: k3s over SSH on the user's own machines.
// Load balancers and volumes are the nodes' own (klipper-lb, local-path)
// and go with k3s's uninstall, so teardown sweeps only the app's namespace.
type Target struct{ target.Base }

func (Target) Name() string { return string(Name) }

// Config is the homelab settings' spec.
func (Target) Config() config.TargetSpec { return Spec }

// Flags: the hosts and their key for init; trust on first use for up.
func (Target) Flags() []target.Flag {
	return []target.Flag{
		{Command: target.CommandInit, Name: "node", Usage: "ROLE:USER@HOST[:PORT], repeatable (role server or agent)", Repeatable: true},
		{Command: target.CommandInit, Name: "ssh-key", Usage: "private key for every node (default: ssh-agent)"},
		{Command: target.CommandUp, Name: "accept-new-host-keys", Usage: "trust hosts' unknown SSH keys on first use (then pinned in the stack)", Bool: true},
	}
}

func (Target) Program(ctx *pulumi.Context, cfg *config.Stack, facts target.Facts) error {
	return Program(ctx, cfg, facts)
}

func (Target) Plugins(*config.Stack) []engine.Plugin {
	return []engine.Plugin{commandPlugin, incluster.KubernetesPlugin}
}

// Preflight checks every host in parallel before anything changes,
// verifying host keys against known_hosts and the keys pinned in the
// stack's outputs by earlier runs; the keys it trusted go to the program to pin.
func (Target) Preflight(ctx context.Context, in target.PreflightInput) (target.Facts, error) {
	h := settings(in.Config)
	pinned := map[string]string{}
	if outs, err := in.Stack.Outputs(ctx); err == nil {
		if m, ok := outs["hostKeys"].Value.(map[string]any); ok {
			for k, v := range m {
				if s, ok := v.(string); ok {
					pinned[k] = s
				}
			}
		}
	}
	sudo := h.SudoPassword.Reveal()
	if h.SudoPassword.IsSet() && !h.SudoPassword.Known() {
		// Read from the stack file, the secret is still ciphertext: the engine opens it.
		all, err := in.Stack.AllConfig(ctx)
		if err != nil {
			return target.Facts{}, err
		}
		sudo = all["liftoff:sudoPassword"].Value
	}
	trust := &remote.Trust{KnownHosts: remote.ExpandHome(h.KnownHosts), Pinned: pinned, AcceptNew: h.AcceptNewHostKeys || in.Flags.Bool("accept-new-host-keys")}
	rep := (&preflight.Preflight{Trust: trust, SudoPassword: sudo, Now: in.Now}).Run(ctx, h.Nodes)
	for _, host := range rep.Hosts {
		for _, c := range host.Checks {
			if c.Status == "warn" {
				in.Log.Warnf("%s: %s (%s): %s", host.Host, c.Name, c.Detail, c.Fix)
			}
		}
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return target.Facts{}, failure.New(failure.Config, fmt.Errorf("preflight failed on %d check(s), nothing was installed:\n  %s", len(failed), strings.Join(failed, "\n  ")),
			"fix each host as listed, then run liftoff up again")
	}
	in.Log.Infof("preflight: %d hosts ready", len(rep.Hosts))
	return target.Facts{HostKeys: rep.HostKeys()}, nil
}

// InitValues records the --node flags as liftoff:nodes.
func (Target) InitValues(in target.InitInput) (config.Values, error) {
	vals := config.Values{}
	nodes, err := nodeFlags(in.Flags.All("node"), in.Flags.Get("ssh-key"))
	if err != nil {
		return nil, err
	}
	if len(nodes) > 0 {
		b, err := json.Marshal(nodes)
		if err != nil {
			return nil, fmt.Errorf("encode liftoff:nodes: %w", err)
		}
		vals["liftoff:nodes"] = config.Plain(string(b))
	}
	return vals, nil
}

var nodeFlagRE = regexp.MustCompile(`^(server|agent):(?:([^@]+)@)?([^:@]+)(?::(\d+))?$`)

// nodeFlags turns --node ROLE:USER@HOST[:PORT] flags into liftoff:nodes
// entries, each with key when one is given.
func nodeFlags(flags []string, key string) ([]map[string]any, error) {
	var out []map[string]any
	for i, n := range flags {
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
		if key != "" {
			node["key"] = key
		}
		out = append(out, node)
	}
	return out, nil
}

// HoldsData: a node's k3s install, whose delete runs the k3s uninstall and
// removes /var/lib/rancher/k3s with the node's local-path volumes, besides
// the in-cluster kinds.
func (t Target) HoldsData(s engine.Step) string {
	if s.Type == "command:remote:Command" && !strings.HasSuffix(s.Name, "-kubeconfig") {
		return "k3s on a node: its uninstall deletes /var/lib/rancher/k3s with the node's local-path volumes"
	}
	return t.Base.HoldsData(s)
}
