// Package aws is the Pulumi program of the aws target: VPC, EKS with spot
// managed node groups, IRSA, ECR, Secrets Manager, database, cache, ingress
// and observability.
package aws

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
)

// Program declares the aws stack.
func Program(ctx *pulumi.Context, cfg *config.Stack) error {
	return errors.New("the aws target is not implemented yet")
}
