package aws

// The monthly cost estimate of an aws stack, from its config and a small
// price table (us-east-1 list prices, see docs/targets.md for source and
// date). Usage (data transfer, NAT and load balancer traffic, logs) is left
// out and said so.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/cost"
)

// HoursPerMonth is AWS's billing convention.
const HoursPerMonth = 730

// PriceDate is when the table was read; docs/targets.md names the source.
const PriceDate = "2026-11"

// SpotFactor is spot's typical price as a share of on-demand for the general
// purpose families liftoff defaults to (spot prices move hourly; AWS's Spot
// Instance Advisor shows 60-70% savings for them).
const SpotFactor = 0.35

// Hourly on-demand prices in USD, us-east-1, Linux.
var (
	instanceHourly = map[string]float64{
		"t3.medium": 0.0416, "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3a.medium": 0.0376, "t3a.large": 0.0752, "t3a.xlarge": 0.1504,
		"m5.large": 0.096, "m5.xlarge": 0.192, "m5a.large": 0.086, "m5a.xlarge": 0.172, "m6i.large": 0.096, "m6i.xlarge": 0.192,
		"m6a.large": 0.0864, "m7i.large": 0.1008, "c5.large": 0.085, "c6i.large": 0.085, "r5.large": 0.126,
		"t4g.medium": 0.0336, "t4g.large": 0.0672, "t4g.xlarge": 0.1344, "m6g.large": 0.077, "m7g.large": 0.0816, "c7g.large": 0.0725,
	}
	dbHourly = map[string]float64{
		"db.t4g.micro": 0.016, "db.t4g.small": 0.032, "db.t4g.medium": 0.065, "db.t4g.large": 0.129,
		"db.t3.micro": 0.018, "db.t3.small": 0.036, "db.m6g.large": 0.152, "db.m7g.large": 0.168, "db.r6g.large": 0.225,
	}
	cacheHourly = map[string]float64{
		"cache.t4g.micro": 0.016, "cache.t4g.small": 0.032, "cache.t4g.medium": 0.065, "cache.t3.micro": 0.017, "cache.m7g.large": 0.158,
	}
)

// Other list prices.
const (
	eksHourly       = 0.10
	natHourly       = 0.045
	nlbHourly       = 0.0225
	ebsGp3PerGBMo   = 0.08
	rdsGp3PerGBMo   = 0.115
	kmsKeyMo        = 1.00
	secretMo        = 0.40
	observabilityGB = 20 + 10 + 10 + 2 // Prometheus, Loki, Tempo, Alertmanager volumes
)

// estimate is the list-price estimate of what cfg runs.
func estimate(cfg *config.Stack) *cost.Estimate {
	a := settings(cfg)
	e := &cost.Estimate{Notes: fmt.Sprintf("us-east-1 list prices of %s; other regions differ by up to ~20%%; excludes data transfer, NAT/LB traffic and CloudWatch usage", PriceDate)}
	add := func(class, detail string, usd float64) {
		e.Lines = append(e.Lines, cost.Line{Class: class, Detail: detail, USD: usd})
	}

	add("eks control plane", "1 cluster, standard support", eksHourly*HoursPerMonth)

	n := a.Nodes
	var sum float64
	var missing []string
	for _, t := range n.InstanceTypes {
		p, ok := instanceHourly[t]
		if !ok {
			missing = append(missing, t)
			continue
		}
		sum += p
	}
	known := len(n.InstanceTypes) - len(missing)
	if known > 0 {
		hourly := sum / float64(known) // the group draws from all its types
		detail := fmt.Sprintf("%d x %s, on-demand", n.Desired, strings.Join(n.InstanceTypes, "|"))
		if n.Capacity == "spot" {
			hourly *= SpotFactor
			detail = fmt.Sprintf("%d x %s, spot (~%.0f%% of on-demand)", n.Desired, strings.Join(n.InstanceTypes, "|"), SpotFactor*100)
		}
		add("nodes", detail, hourly*float64(n.Desired)*HoursPerMonth)
	} else {
		e.Lines = append(e.Lines, cost.Line{Class: "nodes", Detail: "no price for " + strings.Join(missing, ", "), Unknown: true})
	}
	add("node volumes", fmt.Sprintf("%d x %d GiB gp3", n.Desired, n.DiskGB), float64(n.Desired*n.DiskGB)*ebsGp3PerGBMo)

	gateways := map[string]int{"single": 1, "per-az": a.AZCount, "none": 0}[a.NAT]
	if gateways > 0 {
		add("nat gateways", fmt.Sprintf("%d (%s), before traffic at $0.045/GB", gateways, a.NAT), float64(gateways)*natHourly*HoursPerMonth)
	}
	add("load balancer", "1 NLB, before LCU usage", nlbHourly*HoursPerMonth)

	switch cfg.Database.Mode {
	case "rds":
		p, ok := dbHourly[a.DBInstanceClass]
		copies := 1.0
		detail := a.DBInstanceClass
		if cfg.Name == "prod" || strings.HasPrefix(cfg.Name, "prod-") {
			copies, detail = 2, a.DBInstanceClass+", Multi-AZ"
		}
		if ok {
			add("rds", fmt.Sprintf("%s + %d GiB gp3", detail, a.DBStorageGB), copies*(p*HoursPerMonth+float64(a.DBStorageGB)*rdsGp3PerGBMo))
		} else {
			e.Lines = append(e.Lines, cost.Line{Class: "rds", Detail: "no price for " + a.DBInstanceClass, Unknown: true})
		}
	case "in-cluster":
		add("database volume", "10 GiB gp3 (in-cluster PostgreSQL)", 10*ebsGp3PerGBMo)
	}
	switch cfg.Cache.Mode {
	case "elasticache":
		if p, ok := cacheHourly[a.CacheNodeType]; ok {
			add("elasticache", a.CacheNodeType, p*HoursPerMonth)
		} else {
			e.Lines = append(e.Lines, cost.Line{Class: "elasticache", Detail: "no price for " + a.CacheNodeType, Unknown: true})
		}
	case "in-cluster":
		add("cache volume", "1 GiB gp3 (in-cluster Valkey)", 1*ebsGp3PerGBMo)
	}
	if cfg.Observability.Enabled {
		add("observability volumes", fmt.Sprintf("%d GiB gp3", observabilityGB), observabilityGB*ebsGp3PerGBMo)
	}
	add("kms and secrets", "1 KMS key, 1 Secrets Manager secret", kmsKeyMo+secretMo)

	sort.SliceStable(e.Lines, func(i, j int) bool { return e.Lines[i].USD > e.Lines[j].USD })
	for _, l := range e.Lines {
		e.Total += l.USD
	}
	return e
}
