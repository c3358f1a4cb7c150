package launch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/homelab"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// preflight checks every homelab host in parallel before anything changes,
// verifying host keys against known_hosts and the keys pinned in the stack's
// outputs by earlier runs; the keys it trusted go to the program to pin.
func preflight(ctx context.Context, p *ui.Printer, cfg *config.Stack, st *engine.Stack, now func() time.Time) error {
	h := cfg.Homelab
	pinned := map[string]string{}
	if outs, err := st.Outputs(ctx); err == nil {
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
		all, err := st.AllConfig(ctx)
		if err != nil {
			return err
		}
		sudo = all["liftoff:sudoPassword"].Value
	}
	pf := &homelab.Preflight{Trust: &remote.Trust{KnownHosts: remote.ExpandHome(h.KnownHosts), Pinned: pinned, AcceptNew: h.AcceptNewHostKeys},
		SudoPassword: sudo, Now: now}
	rep := pf.Run(ctx, h.Nodes)
	for _, host := range rep.Hosts {
		for _, c := range host.Checks {
			if c.Status == "warn" {
				p.Warnf("%s: %s (%s): %s", host.Host, c.Name, c.Detail, c.Fix)
			}
		}
	}
	if failed := rep.Failed(); len(failed) > 0 {
		return failure.New(failure.Config, fmt.Errorf("preflight failed on %d check(s), nothing was installed:\n  %s", len(failed), strings.Join(failed, "\n  ")),
			"fix each host as listed, then run liftoff up again")
	}
	h.HostKeys = rep.HostKeys()
	p.Infof("preflight: %d hosts ready", len(rep.Hosts))
	return nil
}
