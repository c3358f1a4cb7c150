// Package aws is the Pulumi program of the aws target: VPC, EKS with spot
// managed node groups, IRSA, ECR, Secrets Manager, database, cache, ingress
// and observability.
package aws

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/cache"
	"github.com/liftoff-dev/liftoff/components/cluster"
	"github.com/liftoff-dev/liftoff/components/database"
	"github.com/liftoff-dev/liftoff/components/ingress"
	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/components/metricsserver"
	"github.com/liftoff-dev/liftoff/components/network"
	"github.com/liftoff-dev/liftoff/components/nodes"
	"github.com/liftoff-dev/liftoff/components/registry"
	"github.com/liftoff-dev/liftoff/components/secrets"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// Tag keys on every taggable resource; teardown sweeps and cost reports rely on them.
const (
	TagProject = outputs.TagProject
	TagStack   = outputs.TagStack
)

// Root is the stack's root component.
type Root struct {
	pulumi.ResourceState
}

// BaseName is the deterministic prefix of the stack's AWS names: <app>-<stack>,
// cut to 38 characters with a hash of the whole when longer, so that every
// derived name (IAM roles take 64) stays within AWS limits.
func BaseName(app, stack string) string {
	full := app + "-" + stack
	if len(full) <= 38 {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	return strings.TrimRight(full[:33], "-") + "-" + hex.EncodeToString(sum[:])[:4]
}

// Protected reports whether a stack is production: deletion protection,
// Multi-AZ and final snapshots on its database, a recovery window on its secrets.
func Protected(stack string) bool { return stack == "prod" || strings.HasPrefix(stack, "prod-") }

var assumedRole = regexp.MustCompile(`^arn:(aws[a-z-]*):sts::(\d{12}):assumed-role/([^/]+)/.+$`)

// PrincipalARN turns the caller's identity into the principal an EKS access
// entry takes: an assumed-role session becomes its IAM role.
func PrincipalARN(callerARN string) string {
	if m := assumedRole.FindStringSubmatch(callerARN); m != nil {
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", m[1], m[2], m[3])
	}
	return callerARN
}

// Program declares the aws stack.
func Program(ctx *pulumi.Context, cfg *config.Stack) error {
	a := settings(cfg)
	t := &Root{}
	if err := ctx.RegisterComponentResource("liftoff:aws:Target", ctx.Stack(), t); err != nil {
		return err
	}
	tags := map[string]string{TagProject: ctx.Project(), TagStack: ctx.Stack()}
	prov, err := aws.NewProvider(ctx, "aws", &aws.ProviderArgs{Region: pulumi.String(a.Region),
		DefaultTags: &aws.ProviderDefaultTagsArgs{Tags: pulumi.ToStringMap(tags)}}, pulumi.Parent(t))
	if err != nil {
		return err
	}
	invoke := pulumi.Provider(prov)
	zones, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{State: pulumi.StringRef("available"),
		Filters: []aws.GetAvailabilityZonesFilter{{Name: "opt-in-status", Values: []string{"opt-in-not-required"}}}}, invoke)
	if err != nil {
		return fmt.Errorf("list availability zones of %s: %w", a.Region, err)
	}
	if len(zones.Names) < a.AZCount {
		return fmt.Errorf("aws:region %s has %d availability zones, liftoff:azCount asks for %d (fix: liftoff config set azCount %d)", a.Region, len(zones.Names), a.AZCount, len(zones.Names))
	}
	caller, err := aws.GetCallerIdentity(ctx, nil, invoke)
	if err != nil {
		return fmt.Errorf("who am I on aws: %w", err)
	}
	admins := []string{PrincipalARN(caller.Arn)}
	for _, d := range a.Deployers {
		if d != admins[0] {
			admins = append(admins, d)
		}
	}

	base := BaseName(cfg.App.Name, ctx.Stack())
	awsOpts := []pulumi.ResourceOption{pulumi.Parent(t), pulumi.Provider(prov)}
	net, err := network.New(ctx, base, &network.Args{CIDR: a.VPCCIDR, Zones: zones.Names[:a.AZCount], NAT: a.NAT, ClusterName: base}, awsOpts...)
	if err != nil {
		return err
	}
	allSubnets := pulumi.All(net.PublicSubnetIDs, net.PrivateSubnetIDs).ApplyT(func(v []any) []string {
		return append(append([]string{}, v[0].([]string)...), v[1].([]string)...)
	}).(pulumi.StringArrayOutput)
	eks, err := cluster.New(ctx, base, &cluster.Args{Name: base, Version: a.EKSVersion, Region: a.Region, SubnetIDs: allSubnets,
		ServiceCIDR: a.ServiceCIDR, LogTypes: a.ClusterLogTypes, LogRetentionDays: 30, Admins: admins}, awsOpts...)
	if err != nil {
		return err
	}
	netAddons, err := cluster.NewNetworkAddons(ctx, base+"-net", eks, a.EKSVersion, awsOpts...)
	if err != nil {
		return err
	}
	ng, err := nodes.New(ctx, base+"-nodes", &nodes.Args{ClusterName: eks.Name, Version: a.EKSVersion, SubnetIDs: net.NodeSubnetIDs,
		Capacity: a.Nodes.Capacity, InstanceTypes: a.Nodes.InstanceTypes, Arch: a.Nodes.Arch,
		Min: a.Nodes.Min, Desired: a.Nodes.Desired, Max: a.Nodes.Max, DiskGB: a.Nodes.DiskGB,
		DependsOn: netAddons.Resources}, awsOpts...)
	if err != nil {
		return err
	}
	kube, err := kube.NewProvider(ctx, "eks", &kubernetes.ProviderArgs{Kubeconfig: eks.Kubeconfig},
		pulumi.Parent(t), pulumi.DependsOn([]pulumi.Resource{ng.Group}))
	if err != nil {
		return err
	}
	kubeOpts := []pulumi.ResourceOption{pulumi.Parent(t), pulumi.Provider(kube)}
	addons, err := cluster.NewAddons(ctx, base+"-addons", &cluster.AddonsArgs{Cluster: eks, Version: a.EKSVersion, Tags: tags},
		pulumi.Parent(t), pulumi.Providers(prov, kube), pulumi.DependsOn([]pulumi.Resource{ng.Group}))
	if err != nil {
		return err
	}
	ecr, err := registry.NewECR(ctx, base, &registry.ECRArgs{Name: base, KeepImages: a.ECRKeepImages}, awsOpts...)
	if err != nil {
		return err
	}

	app, ns := cfg.App.Name, cfg.App.Namespace
	nsRes, err := corev1.NewNamespace(ctx, "app-namespace", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(ns), Labels: incluster.OwnerLabels(ctx)}},
		append(kubeOpts, pulumi.DependsOn([]pulumi.Resource{addons}))...)
	if err != nil {
		return err
	}
	inNS := append(kubeOpts, pulumi.DependsOn([]pulumi.Resource{nsRes}))
	// In-cluster and external stores first; RDS and ElastiCache are added below.
	values, err := incluster.DataStores(ctx, cfg, addons.StorageClass, inNS...)
	if err != nil {
		return err
	}
	var db *secrets.Database
	if cfg.Database.Mode == "rds" {
		r, err := database.NewRDS(ctx, base, &database.RDSArgs{Identifier: base, VpcID: net.VpcID, SubnetIDs: net.NodeSubnetIDs,
			ClientSecurityGroupID: eks.SecurityGroupID, InstanceClass: a.DBInstanceClass, StorageGB: a.DBStorageGB,
			BackupDays: a.DBBackupDays, Protect: Protected(ctx.Stack())}, awsOpts...)
		if err != nil {
			return err
		}
		db = &secrets.Database{SecretARN: r.MasterSecretARN, Address: r.Address, Port: r.Port, Name: r.DBName}
	}
	if cfg.Cache.Mode == "elasticache" {
		c, err := cache.NewElastiCache(ctx, base, &cache.ElastiCacheArgs{ID: base, VpcID: net.VpcID, SubnetIDs: net.NodeSubnetIDs,
			ClientSecurityGroupID: eks.SecurityGroupID, NodeType: a.CacheNodeType}, awsOpts...)
		if err != nil {
			return err
		}
		values["CACHE_URL"] = c.URL
	}
	recovery := 0
	if Protected(ctx.Stack()) {
		recovery = 7
	}
	sec, err := secrets.New(ctx, base+"-app", &secrets.Args{SecretName: fmt.Sprintf("liftoff/%s/%s", ctx.Stack(), app), Region: a.Region,
		Namespace: ns, KubeSecret: outputs.EnvSecret(app), OIDC: eks.OIDC, Values: values, Database: db, RecoveryDays: recovery, Operator: true, ChartMirror: cfg.ChartMirror,
		AWSOpts: []pulumi.ResourceOption{pulumi.Provider(prov)}, KubeOpts: []pulumi.ResourceOption{pulumi.Provider(kube), pulumi.DependsOn([]pulumi.Resource{nsRes})}},
		pulumi.Parent(t))
	if err != nil {
		return err
	}
	if err := incluster.Backups(ctx, cfg, addons.StorageClass, append(inNS, pulumi.DependsOn([]pulumi.Resource{sec}))...); err != nil {
		return err
	}
	in, err := ingress.New(ctx, "ingress", &ingress.Args{App: app, AppNamespace: ns, Domain: cfg.App.Domain,
		CertificateARN: a.CertificateARN, Tags: tags, ChartMirror: cfg.ChartMirror}, inNS...)
	if err != nil {
		return err
	}

	outs := pulumi.Map{
		outputs.Target: pulumi.String(string(cfg.Target)), outputs.App: pulumi.String(app), outputs.Namespace: pulumi.String(ns),
		outputs.Region: pulumi.String(a.Region), outputs.ClusterName: eks.Name, "vpcId": net.VpcID,
		outputs.KubeconfigContent: eks.Kubeconfig, outputs.Context: eks.Name,
		outputs.Registry: ecr.URL, outputs.RegistryInsecure: pulumi.Bool(false),
		outputs.AppSecretName: pulumi.String(outputs.EnvSecret(app)), outputs.AppSecretManaged: pulumi.Bool(true), "appSecretArn": sec.SecretARN,
		outputs.URL: in.URL, "loadBalancer": in.Hostname, outputs.StorageClass: pulumi.String(addons.StorageClass),
		outputs.IngressClass: pulumi.String("traefik"), outputs.PreviewDomain: pulumi.String(cfg.PreviewDomain),
		outputs.Database: pulumi.String(cfg.Database.Mode), outputs.Cache: pulumi.String(cfg.Cache.Mode),
	}
	incluster.NetworkOutputs(cfg.Network, outs)
	// EKS has no metrics API of its own: the autoscaler's comes with it.
	if a.MetricsServer.Wanted(cfg) {
		if _, err := metricsserver.New(ctx, "metrics-server", &metricsserver.Args{Namespace: metricsserver.Namespace, Image: a.MetricsServer.Image,
			Labels: incluster.OwnerLabels(ctx)}, append(kubeOpts, pulumi.DependsOn([]pulumi.Resource{addons}))...); err != nil {
			return err
		}
	}
	if cfg.Observability.Enabled {
		if err := incluster.Observability(ctx, cfg, addons.StorageClass, outs, append(kubeOpts, pulumi.DependsOn([]pulumi.Resource{addons}))...); err != nil {
			return err
		}
	}
	return incluster.Export(ctx, t, outs)
}
