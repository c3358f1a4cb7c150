package aws

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/liftoff-dev/liftoff/components/ingress"
	"github.com/liftoff-dev/liftoff/components/metricsserver"
	"github.com/liftoff-dev/liftoff/internal/config"
)

// Name is the target's liftoff:target value.
const Name config.TargetName = "aws"

// DefaultEKSVersion is the pinned Kubernetes version of new clusters;
// changing it is a reviewed change.
const DefaultEKSVersion = "1.34"

// MinSpotInstanceTypes is how many instance types a spot node group needs,
// so that a reclaimed pool is replaced from another.
const MinSpotInstanceTypes = 3

// Spec is what the config learns about the aws target: its keys and their
// parsing, and the managed database and cache it offers.
var Spec = config.TargetSpec{
	Name:      Name,
	Summary:   "VPC, EKS on spot nodes, ECR, RDS and Secrets Manager in your AWS account",
	Databases: []string{"rds"},
	Caches:    []string{"elasticache"},
	Parse:     parse,
	Pins:      map[string]string{"eks": DefaultEKSVersion},
	Keys: append([]config.Key{
		{Name: "aws:region", Type: "string", Doc: "AWS region, e.g. `eu-west-1`."},
		{Name: "liftoff:vpcCidr", Type: "string", Default: "10.0.0.0/16", Doc: "VPC CIDR block (/16 to /20)."},
		{Name: "liftoff:azCount", Type: "int", Default: "2", Doc: "Availability zones (2 or 3)."},
		{Name: "liftoff:nat", Type: "string", Default: "single", Doc: "NAT gateways: `single`, `per-az` (HA), or `none` (dev: nodes in public subnets)."},
		{Name: "liftoff:eksVersion", Type: "string", Default: DefaultEKSVersion, Doc: "EKS Kubernetes version (`1.N`)."},
		{Name: "liftoff:clusterLogTypes", Type: "list", Default: `["api","audit","authenticator"]`, Doc: "Control-plane log types sent to CloudWatch: any of api, audit, authenticator, controllerManager, scheduler."},
		{Name: "liftoff:deployers", Type: "list", Doc: "IAM principal ARNs given cluster-admin access entries, besides the identity running liftoff."},
		{Name: "liftoff:nodeCapacity", Type: "string", Default: "spot", Doc: "Node capacity type: `spot` or `on-demand`."},
		{Name: "liftoff:nodeInstanceTypes", Type: "list", Default: `["t3.large","t3a.large","m5.large","m5a.large","m6i.large"]`, Doc: "Instance types of the node group; spot needs at least " + strconv.Itoa(MinSpotInstanceTypes) + " for diversity."},
		{Name: "liftoff:nodeMin", Type: "int", Default: "2", Doc: "Minimum nodes."},
		{Name: "liftoff:nodeDesired", Type: "int", Default: "2", Doc: "Desired nodes at creation."},
		{Name: "liftoff:nodeMax", Type: "int", Default: "5", Doc: "Maximum nodes."},
		{Name: "liftoff:nodeDiskGb", Type: "int", Default: "40", Doc: "Root volume size of each node in GiB (20-1000)."},
		{Name: "liftoff:dbInstanceClass", Type: "string", Default: "db.t4g.micro", Doc: "RDS instance class."},
		{Name: "liftoff:dbStorageGb", Type: "int", Default: "20", Doc: "RDS storage in GiB (20-1000)."},
		{Name: "liftoff:dbBackupDays", Type: "int", Default: "7", Doc: "RDS automated backup retention in days (1-35)."},
		{Name: "liftoff:cacheNodeType", Type: "string", Default: "cache.t4g.micro", Doc: "ElastiCache node type when `liftoff:cache` is `elasticache`."},
		{Name: "liftoff:ecrKeepImages", Type: "int", Default: "30", Doc: "Images ECR keeps; older ones expire (1-1000)."},
		{Name: "liftoff:certificateArn", Type: "string", Doc: "ACM certificate ARN for TLS on the load balancer (requires `liftoff:domain`)."},
	}, metricsserver.Keys...),
}

// Config is the aws target's own settings (config.Stack.Section).
type Config struct {
	Region          string
	VPCCIDR         string
	ServiceCIDR     string
	AZCount         int
	NAT             string
	EKSVersion      string
	ClusterLogTypes []string
	Deployers       []string
	Nodes           NodeGroup
	DBInstanceClass string
	DBStorageGB     int
	DBBackupDays    int
	CacheNodeType   string
	ECRKeepImages   int
	CertificateARN  string
	MetricsServer   metricsserver.Settings
}

// NodeGroup is the EKS managed node group.
type NodeGroup struct {
	Capacity      string // spot or on-demand
	InstanceTypes []string
	Arch          string // amd64 or arm64, derived from the instance types
	Min           int
	Desired       int
	Max           int
	DiskGB        int
}

// settings is the aws section of a parsed config.
func settings(cfg *config.Stack) *Config {
	c, _ := cfg.Section.(*Config)
	if c == nil {
		return &Config{}
	}
	return c
}

func parse(r *config.Reader, s *config.Stack) any {
	a := &Config{
		Region:          r.Str("aws:region", "", regionName),
		VPCCIDR:         r.Str("liftoff:vpcCidr", "10.0.0.0/16", config.CIDR(16, 20)),
		ServiceCIDR:     "172.20.0.0/16",
		AZCount:         r.Int("liftoff:azCount", 2, 2, 3),
		NAT:             r.Enum("liftoff:nat", "single", "single", "per-az", "none"),
		EKSVersion:      r.Str("liftoff:eksVersion", DefaultEKSVersion, eksVersion),
		ClusterLogTypes: r.List("liftoff:clusterLogTypes", []string{"api", "audit", "authenticator"}, config.OneOf("api", "audit", "authenticator", "controllerManager", "scheduler")),
		Deployers:       r.List("liftoff:deployers", nil, iamPrincipalARN),
		Nodes: NodeGroup{
			Capacity:      r.Enum("liftoff:nodeCapacity", "spot", "spot", "on-demand"),
			InstanceTypes: r.List("liftoff:nodeInstanceTypes", []string{"t3.large", "t3a.large", "m5.large", "m5a.large", "m6i.large"}, instanceType),
			Min:           r.Int("liftoff:nodeMin", 2, 1, 100),
			Desired:       r.Int("liftoff:nodeDesired", 2, 1, 100),
			Max:           r.Int("liftoff:nodeMax", 5, 1, 100),
			DiskGB:        r.Int("liftoff:nodeDiskGb", 40, 20, 1000),
		},
		DBInstanceClass: r.Str("liftoff:dbInstanceClass", "db.t4g.micro", config.Pattern(`^db\.[a-z0-9]+\.[a-z0-9]+$`, "db.t4g.micro")),
		DBStorageGB:     r.Int("liftoff:dbStorageGb", 20, 20, 1000),
		DBBackupDays:    r.Int("liftoff:dbBackupDays", 7, 1, 35),
		CacheNodeType:   r.Str("liftoff:cacheNodeType", "cache.t4g.micro", config.Pattern(`^cache\.[a-z0-9]+\.[a-z0-9]+$`, "cache.t4g.micro")),
		ECRKeepImages:   r.Int("liftoff:ecrKeepImages", 30, 1, 1000),
		MetricsServer:   metricsserver.Parse(r),
		CertificateARN:  r.Str("liftoff:certificateArn", "", config.Pattern(`^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$`, "arn:aws:acm:eu-west-1:123456789012:certificate/...")),
	}
	if a.Region == "" {
		r.Fail("aws:region", config.Value{}, "is not set", "liftoff config set aws:region eu-west-1")
	}
	if !r.Failed("aws:region") {
		r.Check(regionName(a.Region) == nil, "aws:region", a.Region, "", "")
	}
	n := &a.Nodes
	r.Check(n.Min <= n.Desired && n.Desired <= n.Max, "liftoff:nodeDesired", strconv.Itoa(n.Desired),
		fmt.Sprintf("must lie between nodeMin (%d) and nodeMax (%d)", n.Min, n.Max), "set nodeMin <= nodeDesired <= nodeMax")
	if n.Capacity == "spot" {
		r.Check(len(n.InstanceTypes) >= MinSpotInstanceTypes, "liftoff:nodeInstanceTypes", strings.Join(n.InstanceTypes, ","),
			fmt.Sprintf("spot capacity needs at least %d instance types, so a reclaimed pool can be replaced from another", MinSpotInstanceTypes),
			`add types of the same size, e.g. ["t3.large","t3a.large","m5.large"], or set nodeCapacity on-demand`)
	}
	arches := map[string]bool{}
	for _, t := range n.InstanceTypes {
		arches[InstanceArch(t)] = true
	}
	if r.Check(len(arches) <= 1, "liftoff:nodeInstanceTypes", strings.Join(n.InstanceTypes, ","),
		"mixes arm64 (Graviton) and amd64 types; one node group runs one AMI architecture",
		"use only Graviton types (t4g, m7g, ...) or only x86 types") && len(n.InstanceTypes) > 0 {
		n.Arch = InstanceArch(n.InstanceTypes[0])
	}
	if vpc, err := netip.ParsePrefix(a.VPCCIDR); err == nil {
		svc := netip.MustParsePrefix(a.ServiceCIDR)
		if vpc.Overlaps(svc) {
			a.ServiceCIDR = "10.100.0.0/16"
			svc = netip.MustParsePrefix(a.ServiceCIDR)
		}
		r.Check(!vpc.Overlaps(svc), "liftoff:vpcCidr", a.VPCCIDR, "overlaps both EKS service ranges (172.20.0.0/16 and 10.100.0.0/16)", "use a range such as 10.0.0.0/16")
	}
	if a.CertificateARN != "" {
		r.Check(s.App.Domain != "", "liftoff:certificateArn", a.CertificateARN, "needs a domain to serve", "liftoff config set domain sho.rt")
	}
	// The VPC CNI gives pods addresses of the VPC, like the nodes': the
	// app's policy admits the VPC (the API server's service proxy comes
	// from it) and the ingress controller's namespace.
	s.Network = config.Network{HostCIDRs: []string{a.VPCCIDR}, IngressNamespaces: []string{ingress.DefaultNamespace}}
	return a
}

// InstanceArch returns the CPU architecture of an EC2 instance type: Graviton
// families carry a "g" after their generation digit (t4g, m7gd, c6gn).
func InstanceArch(t string) string {
	family, _, _ := strings.Cut(t, ".")
	i := strings.IndexFunc(family, func(r rune) bool { return r >= '0' && r <= '9' })
	if i > 0 && strings.ContainsRune(strings.TrimLeft(family[i:], "0123456789"), 'g') {
		return "arm64"
	}
	return "amd64"
}

func regionName(s string) error {
	if regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$`).MatchString(s) {
		return nil
	}
	return config.Bad("is not an AWS region", "use a region like eu-west-1 or us-east-2")
}

func eksVersion(s string) error {
	var minor int
	if _, err := fmt.Sscanf(s, "1.%d", &minor); err != nil || fmt.Sprintf("1.%d", minor) != s {
		return config.Bad("must be 1.N", "use "+DefaultEKSVersion)
	}
	// The range liftoff pins managed add-on versions for (components/cluster.AddonVersions).
	if minor < 32 || minor > 34 {
		return config.Bad("is not a version liftoff pins EKS add-ons for (1.32-1.34)", "use "+DefaultEKSVersion)
	}
	return nil
}

func instanceType(s string) error {
	if regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`).MatchString(s) {
		return nil
	}
	return config.Bad("is not an EC2 instance type", "use a type like t3.large")
}

func iamPrincipalARN(s string) error {
	if regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$`).MatchString(s) {
		return nil
	}
	return config.Bad("is not an IAM role or user ARN", "use arn:aws:iam::123456789012:role/deployer")
}
