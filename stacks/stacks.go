// Package stacks holds liftoff's Pulumi programs, one package per target,
// and Targets, the one place they are registered. The CLI runs a target's
// program inline through the Automation API; Pulumi.yaml runs the same
// program through cmd/program for users of the plain pulumi CLI.
package stacks

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/ingress"
	"github.com/liftoff-dev/liftoff/components/observability"
	"github.com/liftoff-dev/liftoff/components/secrets"
	"github.com/liftoff-dev/liftoff/components/upstream"
	"github.com/liftoff-dev/liftoff/internal/chartmirror"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/aws"
	"github.com/liftoff-dev/liftoff/stacks/homelab"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
	"github.com/liftoff-dev/liftoff/stacks/kubeconfig"
	"github.com/liftoff-dev/liftoff/stacks/preview"
)

// Targets are the targets this liftoff knows. Every program first makes
// liftoff the owner of the Kubernetes objects it declares.
var Targets = target.NewRegistry(incluster.TakeOwnership, preview.Target{},
	aws.Target{},
	homelab.Target{},
	kubeconfig.Target{},
)

// Run is the Pulumi program of every liftoff stack (the plain pulumi CLI's entry).
func Run(ctx *pulumi.Context) error { return Targets.Run(ctx) }

// Charts are the upstream Helm charts the targets install, at their pins:
// what a chart mirror (liftoff:chartMirror) must hold.
func Charts() []chartmirror.Chart {
	var out []chartmirror.Chart
	for _, c := range []upstream.Chart{observability.OperatorCRDs, observability.PrometheusStack, observability.Loki,
		observability.Tempo, observability.Collector, ingress.Traefik, secrets.Operator} {
		out = append(out, chartmirror.Chart{Name: c.Name, Version: c.Version, Repo: c.Repo})
	}
	return out
}
