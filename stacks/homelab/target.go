package homelab

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/homelab"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

var commandPlugin = engine.PluginFor("command", "github.com/pulumi/pulumi-command/sdk")

// Target is the homelab target: k3s over SSH on the user's own machines.
// Load balancers and volumes are the nodes' own (klipper-lb, local-path)
// and go with k3s's uninstall, so teardown sweeps only the app's namespace.
type Target struct{ target.Base }

func (Target) Name() string { return string(config.Homelab) }

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
	h := in.Config.Homelab
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
	trust := &remote.Trust{KnownHosts: remote.ExpandHome(h.KnownHosts), Pinned: pinned, AcceptNew: h.AcceptNewHostKeys || in.AcceptNewHostKeys}
	rep := (&homelab.Preflight{Trust: trust, SudoPassword: sudo, Now: in.Now}).Run(ctx, h.Nodes)
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
	if len(in.Nodes) > 0 {
		b, err := json.Marshal(in.Nodes)
		if err != nil {
			return nil, err
		}
		vals["liftoff:nodes"] = config.Plain(string(b))
	}
	return vals, nil
}
