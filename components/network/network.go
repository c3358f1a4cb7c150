// Package network is the VPC an EKS cluster lives in: public and private
// subnets across availability zones, tagged for Kubernetes load balancers, an
// internet gateway and a configurable NAT strategy.
package network

import (
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// NAT strategies.
const (
	NATSingle = "single" // one gateway for all private subnets: cheap, one AZ's outage cuts egress
	NATPerAZ  = "per-az" // one gateway per AZ: highly available egress
	NATNone   = "none"   // no private subnets' egress: nodes run in public subnets (dev only)
)

// Args configure the network. They are plain values, validated up front.
type Args struct {
	// CIDR is the VPC range, /16 to /20.
	CIDR string
	// Zones are the availability zones, 2 or 3.
	Zones []string
	// NAT is NATSingle, NATPerAZ or NATNone.
	NAT string
	// ClusterName is tagged on subnets so load balancer controllers find them.
	ClusterName string
}

// Network is the VPC and its subnets.
type Network struct {
	pulumi.ResourceState
	VpcID            pulumi.StringOutput      `pulumi:"vpcId"`
	PublicSubnetIDs  pulumi.StringArrayOutput `pulumi:"publicSubnetIds"`
	PrivateSubnetIDs pulumi.StringArrayOutput `pulumi:"privateSubnetIds"`
	// NodeSubnetIDs are where nodes and databases go: private ones, or public
	// ones with NAT none.
	NodeSubnetIDs pulumi.StringArrayOutput `pulumi:"nodeSubnetIds"`
}

// Validate checks args before any resource is declared.
func (a *Args) Validate() error {
	p, err := netip.ParsePrefix(a.CIDR)
	if err != nil || p.Bits() < 16 || p.Bits() > 20 || !p.Addr().Is4() || p.Masked() != p {
		return fmt.Errorf("network: CIDR %q must be an IPv4 network from /16 to /20, e.g. 10.0.0.0/16", a.CIDR)
	}
	if len(a.Zones) < 2 || len(a.Zones) > 3 {
		return fmt.Errorf("network: %d availability zones given; EKS needs 2 or 3", len(a.Zones))
	}
	switch a.NAT {
	case NATSingle, NATPerAZ, NATNone:
	default:
		return fmt.Errorf("network: NAT %q must be single, per-az or none", a.NAT)
	}
	if a.ClusterName == "" {
		return fmt.Errorf("network: cluster name is required")
	}
	return nil
}

// Subnets splits the VPC range into 2*len(zones) equal subnets, public first,
// each 2 bits longer than a quarter of the VPC: a /16 gives /19s (8,190
// addresses each), room for the VPC CNI's one IP per pod.
func Subnets(vpc string, zones int) (public, private []string, err error) {
	p, err := netip.ParsePrefix(vpc)
	if err != nil {
		return nil, nil, err
	}
	bits := p.Bits() + 3 // 8 slots: up to 3 public, 3 private, 2 spare
	size := uint32(1) << (32 - bits)
	base := p.Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	slot := func(i int) string {
		a := start + uint32(i)*size
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits).String()
	}
	for i := 0; i < zones; i++ {
		private = append(private, slot(i)) // large private ranges first: nodes and pods
		public = append(public, slot(4+i)) // public ones hold load balancers and NAT gateways
	}
	return public, private, nil
}

// New declares the VPC.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Network, error) {
	if args == nil {
		return nil, fmt.Errorf("network: args are required")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	n := &Network{}
	if err := ctx.RegisterComponentResource("liftoff:network:Network", name, n, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(n)
	tag := func(resName string, extra map[string]string) pulumi.StringMap {
		m := pulumi.StringMap{"Name": pulumi.String(resName)}
		for k, v := range extra {
			m[k] = pulumi.String(v)
		}
		return m
	}
	clusterTag := "kubernetes.io/cluster/" + args.ClusterName

	vpc, err := ec2.NewVpc(ctx, name, &ec2.VpcArgs{CidrBlock: pulumi.String(args.CIDR),
		EnableDnsHostnames: pulumi.Bool(true), EnableDnsSupport: pulumi.Bool(true), Tags: tag(name, nil)}, child)
	if err != nil {
		return nil, err
	}
	igw, err := ec2.NewInternetGateway(ctx, name, &ec2.InternetGatewayArgs{VpcId: vpc.ID(), Tags: tag(name, nil)}, child)
	if err != nil {
		return nil, err
	}
	publicCIDRs, privateCIDRs, err := Subnets(args.CIDR, len(args.Zones))
	if err != nil {
		return nil, err
	}
	publicRT, err := ec2.NewRouteTable(ctx, name+"-public", &ec2.RouteTableArgs{VpcId: vpc.ID(),
		Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID()}},
		Tags:   tag(name+"-public", nil)}, child)
	if err != nil {
		return nil, err
	}
	var public, private, nodes pulumi.StringArray
	var nats []*ec2.NatGateway
	for i, zone := range args.Zones {
		sn := fmt.Sprintf("%s-public-%s", name, zone)
		s, err := ec2.NewSubnet(ctx, sn, &ec2.SubnetArgs{VpcId: vpc.ID(), CidrBlock: pulumi.String(publicCIDRs[i]),
			AvailabilityZone: pulumi.String(zone), MapPublicIpOnLaunch: pulumi.Bool(args.NAT == NATNone),
			Tags: tag(sn, map[string]string{"kubernetes.io/role/elb": "1", clusterTag: "shared"})}, child)
		if err != nil {
			return nil, err
		}
		if _, err := ec2.NewRouteTableAssociation(ctx, sn, &ec2.RouteTableAssociationArgs{SubnetId: s.ID(), RouteTableId: publicRT.ID()}, child); err != nil {
			return nil, err
		}
		public = append(public, s.ID())
		if args.NAT == NATPerAZ || args.NAT == NATSingle && i == 0 {
			eip, err := ec2.NewEip(ctx, fmt.Sprintf("%s-nat-%s", name, zone), &ec2.EipArgs{Domain: pulumi.String("vpc"), Tags: tag(fmt.Sprintf("%s-nat-%s", name, zone), nil)},
				child, pulumi.DependsOn([]pulumi.Resource{igw}))
			if err != nil {
				return nil, err
			}
			nat, err := ec2.NewNatGateway(ctx, fmt.Sprintf("%s-%s", name, zone), &ec2.NatGatewayArgs{AllocationId: eip.ID(), SubnetId: s.ID(),
				Tags: tag(fmt.Sprintf("%s-%s", name, zone), nil)}, child, pulumi.DependsOn([]pulumi.Resource{igw}))
			if err != nil {
				return nil, err
			}
			nats = append(nats, nat)
		}
	}
	if args.NAT == NATNone {
		nodes = public
	}
	for i, zone := range args.Zones {
		if args.NAT == NATNone {
			break // no egress for private subnets: declare none rather than dead ones
		}
		sn := fmt.Sprintf("%s-private-%s", name, zone)
		s, err := ec2.NewSubnet(ctx, sn, &ec2.SubnetArgs{VpcId: vpc.ID(), CidrBlock: pulumi.String(privateCIDRs[i]),
			AvailabilityZone: pulumi.String(zone),
			Tags:             tag(sn, map[string]string{"kubernetes.io/role/internal-elb": "1", clusterTag: "shared"})}, child)
		if err != nil {
			return nil, err
		}
		nat := nats[0]
		if args.NAT == NATPerAZ {
			nat = nats[i]
		}
		rt, err := ec2.NewRouteTable(ctx, sn, &ec2.RouteTableArgs{VpcId: vpc.ID(),
			Routes: ec2.RouteTableRouteArray{ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), NatGatewayId: nat.ID()}},
			Tags:   tag(sn, nil)}, child)
		if err != nil {
			return nil, err
		}
		if _, err := ec2.NewRouteTableAssociation(ctx, sn, &ec2.RouteTableAssociationArgs{SubnetId: s.ID(), RouteTableId: rt.ID()}, child); err != nil {
			return nil, err
		}
		private = append(private, s.ID())
		nodes = append(nodes, s.ID())
	}
	n.VpcID = vpc.ID().ToStringOutput()
	n.PublicSubnetIDs = public.ToStringArrayOutput()
	n.PrivateSubnetIDs = private.ToStringArrayOutput()
	n.NodeSubnetIDs = nodes.ToStringArrayOutput()
	return n, ctx.RegisterResourceOutputs(n, pulumi.Map{"vpcId": n.VpcID, "publicSubnetIds": n.PublicSubnetIDs,
		"privateSubnetIds": n.PrivateSubnetIDs, "nodeSubnetIds": n.NodeSubnetIDs})
}
