package main

import (
	"context"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/eksauth"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// EKSTokenOptions are the flags of `liftoff eks-token`.
type EKSTokenOptions struct {
	f       *Factory
	Cluster string
	Region  string
}

// NewCmdEKSToken is the kubeconfig credential plugin of aws stacks: it prints
// an ExecCredential with a token minted in Go, so no aws CLI is needed.
func NewCmdEKSToken(f *Factory, runF func(*EKSTokenOptions) error) *cobra.Command {
	o := &EKSTokenOptions{f: f}
	cmd := &cobra.Command{
		Use:    "eks-token --cluster NAME --region REGION",
		Short:  "Print an EKS token as a kubeconfig exec credential (used by aws stacks' kubeconfigs)",
		Hidden: true,
		Args:   exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Cluster == "" {
				return failure.Newf(failure.Config, "liftoff eks-token --cluster NAME --region REGION", "--cluster is required")
			}
			if runF != nil {
				return runF(o)
			}
			return runEKSToken(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.Cluster, "cluster", "", "EKS cluster name")
	cmd.Flags().StringVar(&o.Region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	return cmd
}

func runEKSToken(ctx context.Context, o *EKSTokenOptions) error {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return failure.New(failure.Auth, err, "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or SSO login)")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return failure.New(failure.Auth, err, "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or SSO login)")
	}
	tok, err := eksauth.Mint(ctx, cfg, o.Cluster, o.f.Now())
	if err != nil {
		return failure.New(failure.Auth, err, "")
	}
	out, err := tok.ExecCredential()
	if err != nil {
		return err
	}
	o.f.Printer().Result(string(out), map[string]any{"expirationTimestamp": tok.Expires})
	return nil
}
