package cache

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/elasticache"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/vpc"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ElastiCacheArgs configure NewElastiCache.
type ElastiCacheArgs struct {
	// ID is the replication group id (deterministic, at most 40 characters).
	ID                    string
	VpcID                 pulumi.StringInput
	SubnetIDs             pulumi.StringArrayInput
	ClientSecurityGroupID pulumi.StringInput
	NodeType              string
}

// ElastiCache is a Valkey replication group, encrypted in transit and at rest,
// reachable from the nodes only.
type ElastiCache struct {
	pulumi.ResourceState
	// URL is the rediss:// URL the app uses (no password: reachability is the security group's).
	URL pulumi.StringOutput `pulumi:"url"`
}

// NewElastiCache declares the cache.
func NewElastiCache(ctx *pulumi.Context, name string, args *ElastiCacheArgs, opts ...pulumi.ResourceOption) (*ElastiCache, error) {
	if args == nil || args.ID == "" || len(args.ID) > 40 || args.NodeType == "" {
		return nil, fmt.Errorf("cache: ElastiCache needs an id of 1-40 characters and a node type")
	}
	c := &ElastiCache{}
	if err := ctx.RegisterComponentResource("liftoff:cache:ElastiCache", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	subnets, err := elasticache.NewSubnetGroup(ctx, name, &elasticache.SubnetGroupArgs{SubnetIds: args.SubnetIDs}, child)
	if err != nil {
		return nil, err
	}
	sg, err := ec2.NewSecurityGroup(ctx, name, &ec2.SecurityGroupArgs{VpcId: args.VpcID,
		Description: pulumi.String("Valkey of " + args.ID + ": reachable from the cluster's nodes only")}, child)
	if err != nil {
		return nil, err
	}
	if _, err := vpc.NewSecurityGroupIngressRule(ctx, name+"-from-nodes", &vpc.SecurityGroupIngressRuleArgs{SecurityGroupId: sg.ID(),
		ReferencedSecurityGroupId: args.ClientSecurityGroupID, IpProtocol: pulumi.String("tcp"), FromPort: pulumi.Int(6379), ToPort: pulumi.Int(6379),
		Description: pulumi.String("Valkey from the nodes")}, child); err != nil {
		return nil, err
	}
	rg, err := elasticache.NewReplicationGroup(ctx, name, &elasticache.ReplicationGroupArgs{
		ReplicationGroupId: pulumi.String(args.ID), Description: pulumi.String("cache of " + args.ID),
		Engine: pulumi.String("valkey"), EngineVersion: pulumi.String("8.0"), NodeType: pulumi.String(args.NodeType),
		NumCacheClusters: pulumi.Int(1), Port: pulumi.Int(6379),
		SubnetGroupName: subnets.Name, SecurityGroupIds: pulumi.StringArray{sg.ID()},
		TransitEncryptionEnabled: pulumi.Bool(true), AtRestEncryptionEnabled: pulumi.Bool(true),
	}, child)
	if err != nil {
		return nil, err
	}
	c.URL = pulumi.Sprintf("rediss://%s:6379", rg.PrimaryEndpointAddress)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"url": c.URL})
}
