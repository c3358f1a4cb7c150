package launch

import (
	"fmt"
	"time"

	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// The closing summaries of up and deploy: a title and the fields a founder
// wants to see, rendered by the printer (the results themselves are the
// --json data).

// PhaseTimings are the phases of the run, for the summary's last line.
func (r *UpResult) PhaseTimings() []PhaseResult { return r.Phases }

// PhaseTimings are the phases of the run, for the summary's last line.
func (r *DeployResult) PhaseTimings() []PhaseResult { return r.Phases }

// Summary is where the app lives, where its next version waits, the
// dashboards, the image and the monthly cost.
func (r *UpResult) Summary() (string, map[string]any) {
	cfg := r.Config
	outs := map[string]any{}
	for _, k := range []string{outputs.Grafana, outputs.Prometheus, outputs.Alertmanager, outputs.Registry, outputs.Namespace} {
		if v, ok := r.Outputs[k]; ok && v != "" {
			outs[k] = v
		}
	}
	for _, k := range []string{outputs.Grafana, outputs.Prometheus, outputs.Alertmanager} {
		if v, ok := outs[k]; ok {
			outs[k] = fmt.Sprintf("%s (liftoff open %s)", v, k)
		}
	}
	if cfg.Preview != nil && r.Expires != nil {
		outs["preview_of"] = cfg.Preview.Of
		outs["expires"] = r.Expires.Format(time.RFC3339) + " (liftoff stacks gc destroys it then; liftoff up extends it)"
	}
	if r.Cost != nil {
		outs["monthly_cost_usd"] = fmt.Sprintf("%.0f (estimate: liftoff preview itemises it)", r.Cost.Total)
	}
	title := fmt.Sprintf("Stack %s: infrastructure is up", cfg.Name)
	if r.Failed {
		title = fmt.Sprintf("Stack %s: up stopped (run it again to resume)", cfg.Name)
	}
	if r.Deploy == nil || r.Deploy.Result == nil {
		return title, outs
	}
	t, d := r.Site, r.Deploy.Result
	outs["image"] = r.Deploy.Image
	outs["live_slot"] = d.Live
	switch {
	case t.URL != "":
		outs["url"] = t.URL
	case cfg.App.Domain != "":
		outs["url"] = "https://" + cfg.App.Domain
	case d.Address != "":
		outs["url"] = d.Address
		outs["reach"] = fmt.Sprintf("the live Service's address, for machines that route to the cluster's network; in the cluster: http://%s.%s.svc.cluster.local; elsewhere: kubectl -n %s port-forward svc/%s 8080:80",
			t.App, t.Namespace, t.Namespace, t.App)
	default:
		outs["url"] = fmt.Sprintf("http://%s.%s.svc.cluster.local (from outside: kubectl -n %s port-forward svc/%s 8080:80)", t.App, t.Namespace, t.Namespace, t.App)
	}
	outs["preview"] = fmt.Sprintf("http://%s.%s.svc.cluster.local", d.Preview, t.Namespace)
	addBake(outs, d)
	switch {
	case r.Failed:
	case d.AlreadyLive:
		title = fmt.Sprintf("Stack %s is live: slot %s already serves %s with this image (nothing deployed; --force-deploy redeploys)", cfg.Name, d.Live, t.App)
	default:
		title = fmt.Sprintf("Stack %s is live: slot %s serves %s", cfg.Name, d.Live, t.App)
	}
	return title, outs
}

// Summary is which slot serves what, where.
func (r *DeployResult) Summary() (string, map[string]any) {
	t, d := r.Site, r.Result
	outs := map[string]any{"image": r.Image, "namespace": t.Namespace, "slot": d.Slot, "live": d.Live, "service": d.Service, "preview_service": d.Preview}
	addBake(outs, d)
	switch {
	case d.RolledBack:
		return fmt.Sprintf("%s: slot %s failed its bake and was rolled back: slot %s is live in %s", t.App, d.Slot, d.Live, t.Namespace), outs
	case d.AlreadyLive:
		return fmt.Sprintf("%s: slot %s already runs %s in %s (nothing deployed; --force-deploy redeploys)", t.App, d.Live, r.Image, t.Namespace), outs
	case !d.Promoted:
		return fmt.Sprintf("%s: slot %s is ready on %s/%s (not promoted; run liftoff promote)", t.App, d.Slot, t.Namespace, d.Preview), outs
	}
	return fmt.Sprintf("%s: slot %s is live in %s", t.App, d.Live, t.Namespace), outs
}

// addBake adds what the bakes found, one line per step.
func addBake(outs map[string]any, d *rollout.Result) {
	for _, b := range d.Bake {
		key := "bake"
		if b.Step > 0 && b.Step < 100 {
			key = fmt.Sprintf("bake_step_%d", b.Step)
		}
		outs[key] = b.String()
	}
}
