package target_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/target"
)

type fake struct {
	target.Base
	name string
}

func (f fake) Name() string                                             { return f.name }
func (f fake) Config() config.TargetSpec                                { return config.TargetSpec{Name: config.TargetName(f.name)} }
func (fake) Program(*pulumi.Context, *config.Stack, target.Facts) error { return nil }

// TestRegistry: a stack's target is chosen by liftoff:target, every preview
// goes to the preview target, an unknown one is an error naming the known
// ones, and a name registered twice is refused at start-up.
func TestRegistry(t *testing.T) {
	r := target.NewRegistry(nil, fake{name: "preview"}, fake{name: "vm"}, fake{name: "aws"})
	if got := strings.Join(r.Names(), ","); got != "aws,vm" {
		t.Errorf("names %s", got)
	}
	if tg, err := r.For(&config.Stack{Target: "vm"}); err != nil || tg.Name() != "vm" {
		t.Errorf("vm: %v %v", tg, err)
	}
	if tg, err := r.For(&config.Stack{Target: "aws", Preview: &config.Preview{Of: "dev"}}); err != nil || tg.Name() != "preview" {
		t.Errorf("a preview of an aws stack: %v %v", tg, err)
	}
	if _, err := r.For(&config.Stack{Target: "gke"}); err == nil || !strings.Contains(err.Error(), "aws, vm") || failure.ClassOf(err) != failure.Config || failure.FixOf(err) == "" {
		t.Errorf("unknown target: %v", err)
	}
	if _, ok := r.Named("vm"); !ok {
		t.Error("Named(vm)")
	}
	tg, _ := r.For(&config.Stack{Target: "vm"})
	if ns := tg.SweepNamespaces(&config.Stack{}, "shop"); len(ns) != 1 || ns[0] != "shop" {
		t.Errorf("the default sweep is the app's namespace only, got %v", ns)
	}
	if tg.HasLeftovers() || tg.Cost(&config.Stack{}) != nil {
		t.Error("Base has leftovers or a cost")
	}
	defer func() {
		if recover() == nil {
			t.Error("a target registered twice was accepted")
		}
	}()
	target.NewRegistry(nil, nil, fake{name: "vm"}, fake{name: "vm"})
}
