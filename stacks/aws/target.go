package aws

import (
	"context"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/cost"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/teardown"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// awsPlugin is the resource plugin at the version of the SDK liftoff is built with.
var awsPlugin = engine.PluginFor("aws", "github.com/pulumi/pulumi-aws/sdk/v6")

// Target is the aws target: the stack makes its own VPC and EKS cluster,
// owns every namespace in it, and leaves tagged leftovers a sweep finds.
type Target struct {
	target.Base
	// Kinds are what the leftover sweep deletes in region (sweepKinds
	// over the default credentials when nil; tests substitute an account).
	Kinds func(ctx context.Context, region string) ([]teardown.Kind, error)
}

func (Target) Name() string { return string(Name) }

// Config is the aws settings' spec.
func (Target) Config() config.TargetSpec { return Spec }

// Flags: init asks for the region.
func (Target) Flags() []target.Flag {
	return []target.Flag{{Command: target.CommandInit, Name: "region", Usage: "region, e.g. eu-west-1"}}
}

// Commands: the kubeconfig credential plugin.
func (Target) Commands() []target.Command { return []target.Command{ekstoken} }

func (Target) Program(ctx *pulumi.Context, cfg *config.Stack, _ target.Facts) error {
	return Program(ctx, cfg)
}

func (Target) Plugins(*config.Stack) []engine.Plugin {
	return []engine.Plugin{awsPlugin, incluster.KubernetesPlugin}
}

// SweepNamespaces: every namespace; the cluster is the stack's own.
func (Target) SweepNamespaces(*config.Stack, string) []string { return nil }

func (Target) HasLeftovers() bool { return true }

// Leftovers deletes what the stack's tags still find in its region: what
// was created outside Pulumi (volumes of PVCs, load balancers, their
// security groups), which is nearly always what blocks a destroy.
func (t Target) Leftovers(ctx context.Context, in target.SweepInput) (*teardown.Receipt, error) {
	kinds := t.Kinds
	if kinds == nil {
		kinds = accountKinds
	}
	k, err := kinds(ctx, settings(in.Config).Region)
	if err != nil {
		return nil, err
	}
	return teardown.TagSweep{Project: in.Project, Stack: in.Config.Name, Kinds: k, Wait: in.Wait, Log: in.Log}.Sweep(ctx)
}

func accountKinds(ctx context.Context, region string) ([]teardown.Kind, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err == nil {
		_, err = cfg.Credentials.Retrieve(ctx)
	}
	if err != nil {
		return nil, failure.New(failure.Auth, fmt.Errorf("aws credentials for the leftover sweep: %w", err), "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or SSO login)")
	}
	return sweepKinds(cfg), nil
}

// Cost is the list-price estimate of what the config runs.
func (Target) Cost(cfg *config.Stack) *cost.Estimate { return estimate(cfg) }

// InitValues asks for the region (default $AWS_REGION).
func (Target) InitValues(in target.InitInput) (config.Values, error) {
	region := in.Flags.Get("region")
	if region == "" {
		var err error
		if region, err = in.Ask("AWS region", in.Getenv("AWS_REGION")); err != nil {
			return nil, err
		}
	}
	vals := config.Values{}
	if region != "" {
		vals["aws:region"] = config.Plain(region)
	}
	return vals, nil
}

// TeardownValues: the region the sweep looks in.
func (Target) TeardownValues(rec outputs.Record) config.Values {
	if rec.Region == "" {
		return nil
	}
	return config.Values{"aws:region": config.Plain(rec.Region)}
}

// HoldsData: RDS besides the in-cluster kinds.
func (t Target) HoldsData(s engine.Step) string {
	if s.Type == "aws:rds/instance:Instance" {
		return "the RDS database"
	}
	return t.Base.HoldsData(s)
}
