// Package nodes is an EKS managed node group: spot capacity by default,
// spread over several instance types, with its IAM role and policies.
package nodes

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Args configure the node group.
type Args struct {
	ClusterName pulumi.StringInput
	Version     string // the cluster's, so nodes upgrade with it
	SubnetIDs   pulumi.StringArrayInput
	// Capacity is "spot" or "on-demand".
	Capacity      string
	InstanceTypes []string
	Arch          string // amd64 or arm64
	Min, Desired  int
	Max           int
	DiskGB        int
	Labels        map[string]string
	// DependsOn are resources nodes need first (the VPC CNI add-on).
	DependsOn []pulumi.Resource
}

// Validate checks args before any resource is declared.
func (a *Args) Validate() error {
	switch {
	case a.Capacity != "spot" && a.Capacity != "on-demand":
		return fmt.Errorf("nodes: capacity %q must be spot or on-demand", a.Capacity)
	case a.Capacity == "spot" && len(a.InstanceTypes) < 2:
		return fmt.Errorf("nodes: spot capacity needs at least 2 instance types, got %v", a.InstanceTypes)
	case len(a.InstanceTypes) == 0:
		return fmt.Errorf("nodes: at least one instance type is required")
	case a.Arch != "amd64" && a.Arch != "arm64":
		return fmt.Errorf("nodes: arch %q must be amd64 or arm64", a.Arch)
	case a.Min < 1 || a.Min > a.Desired || a.Desired > a.Max:
		return fmt.Errorf("nodes: sizes must satisfy 1 <= min (%d) <= desired (%d) <= max (%d)", a.Min, a.Desired, a.Max)
	case a.DiskGB < 20:
		return fmt.Errorf("nodes: disk of %d GiB is below the 20 GiB the AMI needs", a.DiskGB)
	}
	return nil
}

// NodeGroup is the managed node group and its role.
type NodeGroup struct {
	pulumi.ResourceState
	RoleArn pulumi.StringOutput `pulumi:"roleArn"`
	Name    pulumi.StringOutput `pulumi:"name"`
	Group   *eks.NodeGroup
}

// NodePolicies are what every EKS node needs. The CNI policy is not among
// them: the VPC CNI gets it through its own IRSA role.
var NodePolicies = []string{
	"arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
	"arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
	"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
}

// New declares the node group.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*NodeGroup, error) {
	if args == nil {
		return nil, fmt.Errorf("nodes: args are required")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	n := &NodeGroup{}
	if err := ctx.RegisterComponentResource("liftoff:nodes:NodeGroup", name, n, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(n)
	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{AssumeRolePolicy: pulumi.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)}, child)
	if err != nil {
		return nil, err
	}
	deps := append([]pulumi.Resource{}, args.DependsOn...)
	for _, p := range NodePolicies {
		short := p[strings.LastIndex(p, "/")+1:]
		att, err := iam.NewRolePolicyAttachment(ctx, name+"-"+short, &iam.RolePolicyAttachmentArgs{Role: role.Name, PolicyArn: pulumi.String(p)}, child)
		if err != nil {
			return nil, err
		}
		deps = append(deps, att)
	}
	ami := "AL2023_x86_64_STANDARD"
	if args.Arch == "arm64" {
		ami = "AL2023_ARM_64_STANDARD"
	}
	labels := pulumi.StringMap{"liftoff.dev/capacity": pulumi.String(args.Capacity)}
	for k, v := range args.Labels {
		labels[k] = pulumi.String(v)
	}
	ng, err := eks.NewNodeGroup(ctx, name, &eks.NodeGroupArgs{
		ClusterName: args.ClusterName, Version: pulumi.String(args.Version), NodeRoleArn: role.Arn, SubnetIds: args.SubnetIDs,
		CapacityType: pulumi.String(strings.ToUpper(strings.ReplaceAll(args.Capacity, "-", "_"))),
		// Several types of one size: a reclaimed spot pool is replaced from another.
		InstanceTypes: pulumi.ToStringArray(args.InstanceTypes), AmiType: pulumi.String(ami), DiskSize: pulumi.Int(args.DiskGB),
		ScalingConfig: &eks.NodeGroupScalingConfigArgs{MinSize: pulumi.Int(args.Min), DesiredSize: pulumi.Int(args.Desired), MaxSize: pulumi.Int(args.Max)},
		UpdateConfig:  &eks.NodeGroupUpdateConfigArgs{MaxUnavailable: pulumi.Int(1)},
		Labels:        labels,
	}, child, pulumi.DependsOn(deps),
		// The cluster autoscaler moves the desired size; a rerun must not reset it.
		pulumi.IgnoreChanges([]string{"scalingConfig.desiredSize"}))
	if err != nil {
		return nil, err
	}
	n.RoleArn, n.Name, n.Group = role.Arn, ng.NodeGroupName, ng
	return n, ctx.RegisterResourceOutputs(n, pulumi.Map{"roleArn": n.RoleArn, "name": n.Name})
}
