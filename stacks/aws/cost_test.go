package aws

import (
	"math"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/cost"
	"github.com/liftoff-dev/liftoff/stacks/kubeconfig"
)

func parseCost(t *testing.T, stack string, kv map[string]string) *config.Stack {
	t.Helper()
	v := config.Values{"liftoff:target": config.Plain("aws"), "aws:region": config.Plain("us-east-1")}
	for k, s := range kv {
		v[k] = config.Plain(s)
	}
	cfg, err := config.Parse(stack, v)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func line(e *cost.Estimate, class string) cost.Line {
	for _, l := range e.Lines {
		if l.Class == class {
			return l
		}
	}
	return cost.Line{Class: "missing"}
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

func TestDefaults(t *testing.T) {
	e := estimate(parseCost(t, "dev", nil))
	t.Log("\n" + e.String()) // go test ./internal/cost -run TestDefaults -v prints the default stack's estimate
	// 2 spot nodes drawing from 5 types averaging $0.08728/h.
	want := map[string]float64{
		"eks control plane": 73, "nat gateways": 32.85, "load balancer": 16.425,
		"nodes":        0.08728 * SpotFactor * 2 * 730,
		"rds":          0.016*730 + 20*0.115,
		"node volumes": 2 * 40 * 0.08,
	}
	for class, usd := range want {
		if got := line(e, class).USD; !near(got, usd) {
			t.Errorf("%s: %.2f, want %.2f", class, got, usd)
		}
	}
	var sum float64
	for _, l := range e.Lines {
		sum += l.USD
	}
	if !near(sum, e.Total) || e.Total < 150 || e.Total > 250 {
		t.Errorf("total %.2f (sum %.2f)", e.Total, sum)
	}
	if s := e.String(); !strings.Contains(s, "total") || !strings.Contains(s, "spot") {
		t.Errorf("rendered:\n%s", s)
	}
}

func TestOptions(t *testing.T) {
	od := estimate(parseCost(t, "dev", map[string]string{"liftoff:nodeCapacity": "on-demand", "liftoff:nat": "per-az", "liftoff:azCount": "3"}))
	spot := estimate(parseCost(t, "dev", nil))
	if line(od, "nodes").USD <= line(spot, "nodes").USD*2 {
		t.Errorf("on-demand %.2f not well above spot %.2f", line(od, "nodes").USD, line(spot, "nodes").USD)
	}
	if !near(line(od, "nat gateways").USD, 3*32.85) {
		t.Errorf("per-az NAT %.2f", line(od, "nat gateways").USD)
	}
	prod := estimate(parseCost(t, "prod", nil))
	if !near(line(prod, "rds").USD, 2*line(spot, "rds").USD) {
		t.Errorf("prod rds %.2f is not Multi-AZ", line(prod, "rds").USD)
	}
	none := estimate(parseCost(t, "dev", map[string]string{"liftoff:nat": "none", "liftoff:database": "in-cluster", "liftoff:observability": "false"}))
	if line(none, "nat gateways").Class != "missing" || line(none, "rds").Class != "missing" || line(none, "observability volumes").Class != "missing" {
		t.Errorf("lines %+v", none.Lines)
	}
	unknown := estimate(parseCost(t, "dev", map[string]string{"liftoff:nodeInstanceTypes": `["x9.large","x9a.large","x9i.large"]`}))
	if l := line(unknown, "nodes"); !l.Unknown || l.USD != 0 {
		t.Errorf("unknown types: %+v", l)
	}
	if (kubeconfig.Target{}).Cost(&config.Stack{Target: kubeconfig.Name}) != nil {
		t.Error("estimate for a non-aws stack")
	}
}
