package aws

import (
	"context"
	"errors"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/aws/eksauth"
)

// ekstokenUsage is how the command is called, for its errors.
const ekstokenUsage = "liftoff eks-token --cluster NAME --region REGION"

// ekstoken is the kubeconfig credential plugin of aws stacks (the cluster
// component writes kubeconfigs that call it): it prints an ExecCredential
// with a token minted in Go, so no aws CLI is needed.
var ekstoken = target.Command{
	Name:   "eks-token",
	Short:  "Print an EKS token as a kubeconfig exec credential (used by aws stacks' kubeconfigs)",
	Hidden: true,
	Flags: []target.Flag{
		{Name: "cluster", Usage: "EKS cluster name"},
		{Name: "region", Usage: "AWS region (default: AWS_REGION or the profile's)"},
	},
	Run: func(ctx context.Context, flags target.FlagValues, args []string, cio target.CommandIO) error {
		o, err := parseEKSToken(flags, args)
		if err != nil {
			return err
		}
		return o.run(ctx, cio)
	},
}

// ekstokenOptions are the flags of `liftoff eks-token`.
type ekstokenOptions struct {
	Cluster string
	Region  string
}

func parseEKSToken(flags target.FlagValues, args []string) (ekstokenOptions, error) {
	o := ekstokenOptions{Cluster: flags.Get("cluster"), Region: flags.Get("region")}
	if len(args) > 0 {
		return o, failure.Newf(failure.Config, ekstokenUsage, "eks-token takes no arguments (got %q)", args[0])
	}
	if o.Cluster == "" {
		return o, failure.New(failure.Config, errors.New("--cluster is required"), ekstokenUsage)
	}
	return o, nil
}
func (o ekstokenOptions) run(ctx context.Context, cio target.CommandIO) error {
	var opts []func(*awsconfig.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, awsconfig.WithRegion(o.Region))
	}
	const fix = "configure AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, or SSO login)"
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return failure.New(failure.Auth, fmt.Errorf("load aws config: %w", err), fix)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return failure.New(failure.Auth, fmt.Errorf("aws credentials: %w", err), fix)
	}
	tok, err := eksauth.Mint(ctx, cfg, o.Cluster, cio.Now())
	if err != nil {
		return failure.New(failure.Auth, fmt.Errorf("mint a token for %s: %w", o.Cluster, err), "")
	}
	out, err := tok.ExecCredential()
	if err != nil {
		return fmt.Errorf("encode the exec credential: %w", err)
	}
	_, err = fmt.Fprintln(cio.Out, string(out))
	return err
}
