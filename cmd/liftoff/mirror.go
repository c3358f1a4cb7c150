package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/chartmirror"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/ui"
	"github.com/liftoff-dev/liftoff/stacks"
)

// NewCmdMirror groups what copies liftoff's upstream artifacts into a mirror.
func NewCmdMirror(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Copy the upstream charts liftoff installs into a mirror, for clusters that cannot reach the internet",
	}
	cmd.AddCommand(NewCmdMirrorCharts(f, nil))
	return cmd
}

// MirrorChartsOptions are the flags of `liftoff mirror charts`.
type MirrorChartsOptions struct {
	f   *Factory
	Dir string
	// From is one repository to read every chart from instead of its public one.
	From         string
	Charts       []string
	AllowMissing bool
}

// NewCmdMirrorCharts fills a Helm repository folder with the pinned charts.
func NewCmdMirrorCharts(f *Factory, runF func(*MirrorChartsOptions) error) *cobra.Command {
	o := &MirrorChartsOptions{f: f}
	cmd := &cobra.Command{
		Use:   "charts DIR",
		Short: "Copy every upstream Helm chart liftoff installs, at its pinned version, into DIR",
		Long: `charts copies every upstream Helm chart liftoff installs (observability,
ingress, External Secrets), at the version liftoff pins, from its public
repository into DIR, checks each archive against its repository's digest, and
writes DIR/index.yaml. DIR is then a Helm repository: serve it over HTTP and
point the stack at it (liftoff config set chartMirror https://host/path), or
push its archives to an OCI registry (docs/observability.md, Air-gapped
clusters). A chart already in DIR with its recorded digest is not fetched
again, so a second run needs no network.

--from reads every chart from one repository instead (another mirror: an
http(s) URL or a folder holding index.yaml).`,
		Example: `  liftoff mirror charts ./charts
  liftoff mirror charts ./charts --from https://charts.internal.example/liftoff
  liftoff mirror charts ./charts --chart kube-prometheus-stack --chart prometheus-operator-crds`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir = args[0]
			if _, err := o.pinned(); err != nil {
				return err
			}
			if err := o.checkFrom(); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runMirrorCharts(cmd, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.From, "from", "", "read every chart from this repository (http(s) URL or folder with index.yaml) instead of its public one")
	fl.StringSliceVar(&o.Charts, "chart", nil, "mirror only this chart (repeatable; default: every chart liftoff pins)")
	fl.BoolVar(&o.AllowMissing, "allow-missing", false, "report charts the source does not hold instead of failing")
	return cmd
}

// pinned are the charts to mirror: every pin, or those --chart names.
func (o *MirrorChartsOptions) pinned() ([]chartmirror.Chart, error) {
	all := stacks.Charts()
	if len(o.Charts) == 0 {
		return all, nil
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	var out []chartmirror.Chart
	for _, n := range o.Charts {
		i := slices.Index(names, n)
		if i < 0 {
			return nil, failure.Newf(failure.Config, "use one of: "+strings.Join(names, ", "), "--chart %q: liftoff installs no chart of that name", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

func (o *MirrorChartsOptions) checkFrom() error {
	if o.From == "" {
		return nil
	}
	switch err := chartmirror.CheckSource(o.From); {
	case errors.Is(err, chartmirror.ErrNotRepository):
		return failure.Newf(failure.Config, "give an http(s) URL or a folder; an OCI registry is a place to push a mirror's archives to (docs/observability.md)",
			"--from %q: %v", o.From, err)
	case err != nil:
		return failure.Newf(failure.Config, "give a folder holding index.yaml (a Helm repository folder), or an http(s) URL",
			"--from %q: %v", o.From, err)
	}
	return nil
}

func runMirrorCharts(cmd *cobra.Command, o *MirrorChartsOptions) error {
	p := o.f.Printer()
	charts, _ := o.pinned()
	p.Infof("mirroring %d charts into %s", len(charts), o.Dir)
	res, err := chartmirror.Mirror(cmd.Context(), o.Dir, charts, chartmirror.Options{From: o.From, AllowMissing: o.AllowMissing,
		Done: func(r chartmirror.Result) {
			switch r.Status {
			case "fetched":
				p.Infof("  %s %s: fetched %s from %s", r.Chart, r.Version, ui.Bytes(r.Bytes), r.Source)
			case "present":
				p.Infof("  %s %s: already there", r.Chart, r.Version)
			case "missing":
				p.Warnf("  %s %s: %s (left out)", r.Chart, r.Version, r.Error)
			default:
				p.Warnf("  %s %s: %s", r.Chart, r.Version, r.Error)
			}
		}})
	var me *chartmirror.Error
	switch {
	case errors.As(err, &me) && me.Unreachable:
		return failure.New(failure.Registry, err, "check the network, or name a mirror that can be reached with --from")
	case errors.As(err, &me):
		return failure.New(failure.NotFound, err, "the source lacks a pinned version: mirror it from the chart's public repository")
	case err != nil:
		return failure.New(failure.Internal, err, "")
	}
	n := 0
	for _, r := range res {
		if r.Status == "fetched" || r.Status == "present" {
			n++
		}
	}
	text := fmt.Sprintf("%d of %d charts in %s (a Helm repository folder: serve it over HTTP, then liftoff config set chartMirror <its URL>)", n, len(res), o.Dir)
	p.Result(text, mirrorResult{Dir: o.Dir, Charts: res})
	return nil
}

// mirrorResult is what a mirror run left in its folder.
type mirrorResult struct {
	Dir    string               `json:"dir"`
	Charts []chartmirror.Result `json:"charts"`
}
