package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// StatusOptions are the flags of `liftoff status`.
type StatusOptions struct {
	f           *Factory
	ShowSecrets bool
}

// NewCmdStatus shows a stack's outputs, last update and lock holders.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	o := &StatusOptions{f: f}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the stack's outputs, last update, lock holders, the app's slots and how to reach the dashboards",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runStatus(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.ShowSecrets, "show-secrets", false, "print secret outputs (the Grafana admin password) in plain text")
	return cmd
}

func runStatus(ctx context.Context, o *StatusOptions) error {
	f := o.f
	open, err := f.OpenStack(ctx)
	if err != nil {
		return err
	}
	cfg, eng, st, outs := open.Config, open.Engine, open.Stack, open.Outputs
	last, err := st.LastUpdate(ctx)
	if err != nil {
		return err
	}
	var holders []lock.Holder
	if h, _ := lock.Read(f.LockPath(eng.Project(), cfg.Name)); h != nil {
		holders = append(holders, *h)
	}
	data := statusResult{Stack: cfg.Name, Target: string(cfg.Target), Backend: eng.Backend(), Outputs: outs.Masked(), LastUpdate: last, Locks: holders}
	var b strings.Builder
	fmt.Fprintf(&b, "stack     %s (%s)\nbackend   %s\n", cfg.Name, cfg.Target, eng.Backend())
	if last == nil {
		b.WriteString("updated   never: run liftoff up\n")
	} else {
		fmt.Fprintf(&b, "updated   %s %s at %s\n", last.Kind, last.Result, last.StartTime.Local().Format(time.DateTime))
	}
	if len(holders) == 0 {
		b.WriteString("lock      free\n")
	}
	for _, h := range holders {
		state := "running"
		if !lock.Alive(h) {
			state = "stale: the next run breaks it"
		}
		fmt.Fprintf(&b, "lock      held by %s (%s)\n", h, state)
	}
	keys := make([]string, 0, len(outs))
	for k := range outs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		b.WriteString("outputs\n")
	}
	masked := outs.Masked()
	if o.ShowSecrets {
		for k, v := range outs {
			masked[k] = v.Value
		}
		data.Outputs = masked
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "  %-22s %v\n", k, masked[k])
	}
	if hints := accessHints(outs.Masked()); hints != "" {
		b.WriteString(hints)
	}
	if last != nil {
		if st, err := f.appStatus(ctx); err != nil {
			fmt.Fprintf(&b, "app       unavailable: %v\n", err)
			data.AppError = err.Error()
		} else {
			b.WriteString(appStatus(st))
			data.App = st
		}
	}
	f.Printer().Result(b.String(), data)
	return nil
}

// accessHints says how to reach the dashboards the stack recorded as
// "name.namespace.svc:port" outputs.
func accessHints(outs map[string]any) string {
	var b strings.Builder
	for i, t := range []struct{ key, label string }{{outputs.Grafana, "Grafana"}, {outputs.Prometheus, "Prometheus"}, {outputs.Alertmanager, "Alertmanager"}} {
		addr, _ := outs[t.key].(string)
		host, port, ok := strings.Cut(addr, ":")
		parts := strings.Split(host, ".")
		if !ok || len(parts) < 2 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("observability\n")
		}
		local := []string{"3000", "9090", "9093"}[i]
		fmt.Fprintf(&b, "  %-12s kubectl -n %s port-forward svc/%s %s:%s, then http://localhost:%s\n", t.label, parts[1], parts[0], local, port, local)
	}
	if g, _ := outs[outputs.Grafana].(string); g != "" {
		b.WriteString("  Grafana user admin; password: liftoff status --show-secrets (grafanaAdminPassword)\n")
	}
	return b.String()
}

// appStatus reads both slots from the cluster, within a few seconds.
func (f *Factory) appStatus(ctx context.Context) (*rollout.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	t, _, err := f.Site(ctx, ClusterFlags{})
	if err != nil {
		return nil, err
	}
	e, err := t.Client(launch.Deps{Printer: f.Printer(), Now: f.Now}, lock.Self("liftoff status", f.Getenv, f.Now()))
	if err != nil {
		return nil, err
	}
	return e.Status(ctx)
}

// statusResult is `liftoff status`: the stack, its last update, its locks
// and the app's slots.
type statusResult struct {
	Stack      string             `json:"stack"`
	Target     string             `json:"target"`
	Backend    string             `json:"backend"`
	Outputs    map[string]any     `json:"outputs"`
	LastUpdate *engine.LastUpdate `json:"last_update"`
	Locks      []lock.Holder      `json:"locks"`
	App        *rollout.Status    `json:"app,omitempty"`
	AppError   string             `json:"app_error,omitempty"`
}
