// Package homelab is the Pulumi program of the homelab target: k3s installed
// over SSH on the user's own machines, with registry, secrets and observability.
package homelab

import (
	"errors"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
)

// Program declares the homelab stack.
func Program(ctx *pulumi.Context, cfg *config.Stack) error {
	return errors.New("the homelab target is not implemented yet")
}
