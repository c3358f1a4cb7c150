package aws

import (
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// TestEKSTokenFlags: eks-token's flags land in its options; a missing
// cluster or a stray argument is bad input (exit 2) naming the fix.
func TestEKSTokenFlags(t *testing.T) {
	o, err := parseEKSToken(target.FlagValues{"cluster": {"c"}, "region": {"eu-west-1"}}, nil)
	if err != nil || o != (ekstokenOptions{Cluster: "c", Region: "eu-west-1"}) {
		t.Fatalf("%+v %v", o, err)
	}
	for _, c := range []struct {
		flags target.FlagValues
		args  []string
		want  string
	}{{nil, nil, "--cluster is required"}, {target.FlagValues{"cluster": {"c"}}, []string{"extra"}, "takes no arguments"}} {
		_, err := parseEKSToken(c.flags, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) || failure.ClassOf(err) != failure.Config || failure.FixOf(err) == "" {
			t.Errorf("eks-token %v %v: %v, want %q", c.flags, c.args, err, c.want)
		}
	}
}
