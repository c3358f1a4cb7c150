// Command program is the Pulumi program that Pulumi.yaml names, for people who
// run liftoff's stacks with the plain pulumi CLI. liftoff itself runs the same
// stacks.Run inline.
package main

import (
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/stacks"
)

func main() {
	pulumi.Run(stacks.Run)
}
