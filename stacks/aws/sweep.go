package aws

// The leftover sweep's kinds over the AWS APIs (teardown.TagSweep runs them).

import (
	"context"
	"errors"
	"fmt"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/smithy-go"

	"github.com/liftoff-dev/liftoff/internal/teardown"
)

// sweepKinds are the Kinds the aws sweep deletes, in dependency order, over
// the AWS APIs: load balancers before their target groups; detached network
// interfaces (a load balancer's linger for minutes after it goes) before the
// security groups they hold; then volumes, log groups and ECR repositories
// with their images.
func sweepKinds(cfg awssdk.Config) []teardown.Kind {
	e, l := ec2.NewFromConfig(cfg), elb.NewFromConfig(cfg)
	return []teardown.Kind{
		loadBalancers{l}, targetGroups{l}, networkInterfaces{e}, securityGroups{e}, volumes{e},
		logGroups{cloudwatchlogs.NewFromConfig(cfg)}, repositories{ecr.NewFromConfig(cfg)},
	}
}

// Error codes that mean "retry after the rest" and "already gone".
var (
	dependencyCodes = []string{"DependencyViolation", "ResourceInUse", "InvalidNetworkInterface.InUse", "VolumeInUse", "OperationAbortedException", "IncorrectState"}
	notFoundCodes   = []string{"InvalidGroup.NotFound", "InvalidNetworkInterfaceID.NotFound", "InvalidVolume.NotFound", "LoadBalancerNotFound",
		"TargetGroupNotFound", "ResourceNotFoundException", "RepositoryNotFoundException"}
)

// classify wraps an AWS API error with teardown.ErrDependency or teardown.ErrNotFound when its code means that.
func classify(err error) error {
	var api smithy.APIError
	if err == nil || !errors.As(err, &api) {
		return err
	}
	for _, c := range dependencyCodes {
		if api.ErrorCode() == c {
			return fmt.Errorf("%w: %w", teardown.ErrDependency, err)
		}
	}
	for _, c := range notFoundCodes {
		if api.ErrorCode() == c {
			return fmt.Errorf("%w: %w", teardown.ErrNotFound, err)
		}
	}
	return err
}

func tagFilter(stack string) ec2types.Filter {
	return ec2types.Filter{Name: awssdk.String("tag:" + teardown.TagStack), Values: []string{stack}}
}

func ec2Tags(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
	}
	return m
}

// elbTagged reads the tags of ARNs (20 per call, the API's limit) and keeps those tagged with the stack.
func elbTagged(ctx context.Context, c *elb.Client, arns []string, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	for i := 0; i < len(arns); i += 20 {
		res, err := c.DescribeTags(ctx, &elb.DescribeTagsInput{ResourceArns: arns[i:min(i+20, len(arns))]})
		if err != nil {
			return nil, err
		}
		for _, d := range res.TagDescriptions {
			m := map[string]string{}
			for _, t := range d.Tags {
				m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
			}
			if m[teardown.TagStack] == stack {
				out = append(out, teardown.Resource{ID: awssdk.ToString(d.ResourceArn), Tags: m})
			}
		}
	}
	return out, nil
}

type loadBalancers struct{ c *elb.Client }

func (loadBalancers) Name() string { return "load balancer" }
func (k loadBalancers) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var arns []string
	p := elb.NewDescribeLoadBalancersPaginator(k.c, &elb.DescribeLoadBalancersInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, lb := range page.LoadBalancers {
			arns = append(arns, awssdk.ToString(lb.LoadBalancerArn))
		}
	}
	return elbTagged(ctx, k.c, arns, stack)
}
func (k loadBalancers) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: awssdk.String(id)})
	return classify(err)
}

type targetGroups struct{ c *elb.Client }

func (targetGroups) Name() string { return "target group" }
func (k targetGroups) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var arns []string
	p := elb.NewDescribeTargetGroupsPaginator(k.c, &elb.DescribeTargetGroupsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, tg := range page.TargetGroups {
			arns = append(arns, awssdk.ToString(tg.TargetGroupArn))
		}
	}
	return elbTagged(ctx, k.c, arns, stack)
}
func (k targetGroups) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteTargetGroup(ctx, &elb.DeleteTargetGroupInput{TargetGroupArn: awssdk.String(id)})
	return classify(err)
}

// networkInterfaces are the detached interfaces tagged with the stack, and
// those in the stack's VPCs (a deleted load balancer's or the VPC CNI's carry
// no tags of ours; they take the VPC's).
type networkInterfaces struct{ c *ec2.Client }

func (networkInterfaces) Name() string { return "network interface" }
func (k networkInterfaces) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	available := ec2types.Filter{Name: awssdk.String("status"), Values: []string{"available"}}
	seen := map[string]bool{}
	var out []teardown.Resource
	collect := func(filters []ec2types.Filter, via string, tags map[string]string) error {
		p := ec2.NewDescribeNetworkInterfacesPaginator(k.c, &ec2.DescribeNetworkInterfacesInput{Filters: filters})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, n := range page.NetworkInterfaces {
				id := awssdk.ToString(n.NetworkInterfaceId)
				if seen[id] {
					continue
				}
				seen[id] = true
				r := teardown.Resource{ID: id, Tags: ec2Tags(n.TagSet)}
				if tags != nil {
					r.Tags, r.Via = tags, via
				}
				out = append(out, r)
			}
		}
		return nil
	}
	if err := collect([]ec2types.Filter{available, tagFilter(stack)}, "", nil); err != nil {
		return nil, err
	}
	vpcs, err := k.c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{tagFilter(stack)}})
	if err != nil {
		return nil, err
	}
	for _, v := range vpcs.Vpcs {
		id := awssdk.ToString(v.VpcId)
		if err := collect([]ec2types.Filter{available, {Name: awssdk.String("vpc-id"), Values: []string{id}}}, "in "+id, ec2Tags(v.Tags)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
func (k networkInterfaces) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: awssdk.String(id)})
	return classify(err)
}

type securityGroups struct{ c *ec2.Client }

func (securityGroups) Name() string { return "security group" }
func (k securityGroups) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	p := ec2.NewDescribeSecurityGroupsPaginator(k.c, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{tagFilter(stack)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range page.SecurityGroups {
			if awssdk.ToString(g.GroupName) != "default" { // goes with its VPC
				out = append(out, teardown.Resource{ID: awssdk.ToString(g.GroupId), Tags: ec2Tags(g.Tags)})
			}
		}
	}
	return out, nil
}
func (k securityGroups) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: awssdk.String(id)})
	return classify(err)
}

// volumes are the detached EBS volumes tagged with the stack (the gp3
// StorageClass tags what the EBS CSI driver provisions).
type volumes struct{ c *ec2.Client }

func (volumes) Name() string { return "volume" }
func (k volumes) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	p := ec2.NewDescribeVolumesPaginator(k.c, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{tagFilter(stack),
		{Name: awssdk.String("status"), Values: []string{"available"}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, v := range page.Volumes {
			out = append(out, teardown.Resource{ID: awssdk.ToString(v.VolumeId), Tags: ec2Tags(v.Tags)})
		}
	}
	return out, nil
}
func (k volumes) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: awssdk.String(id)})
	return classify(err)
}

// logGroups are the EKS log groups (/aws/eks/...) tagged with the stack.
type logGroups struct{ c *cloudwatchlogs.Client }

func (logGroups) Name() string { return "log group" }
func (k logGroups) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	p := cloudwatchlogs.NewDescribeLogGroupsPaginator(k.c, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: awssdk.String("/aws/eks/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, g := range page.LogGroups {
			tags, err := k.c.ListTagsForResource(ctx, &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: g.LogGroupArn})
			if err != nil {
				return nil, err
			}
			if tags.Tags[teardown.TagStack] == stack {
				out = append(out, teardown.Resource{ID: awssdk.ToString(g.LogGroupName), Tags: tags.Tags})
			}
		}
	}
	return out, nil
}
func (k logGroups) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: awssdk.String(id)})
	return classify(err)
}

// repositories are the ECR repositories tagged with the stack, deleted with their images.
type repositories struct{ c *ecr.Client }

func (repositories) Name() string { return "ecr repository" }
func (k repositories) List(ctx context.Context, stack string) ([]teardown.Resource, error) {
	var out []teardown.Resource
	p := ecr.NewDescribeRepositoriesPaginator(k.c, &ecr.DescribeRepositoriesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Repositories {
			tags, err := k.c.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: r.RepositoryArn})
			if err != nil {
				return nil, err
			}
			m := map[string]string{}
			for _, t := range tags.Tags {
				m[awssdk.ToString(t.Key)] = awssdk.ToString(t.Value)
			}
			if m[teardown.TagStack] == stack {
				out = append(out, teardown.Resource{ID: awssdk.ToString(r.RepositoryName), Tags: m})
			}
		}
	}
	return out, nil
}
func (k repositories) Delete(ctx context.Context, id string) error {
	_, err := k.c.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: awssdk.String(id), Force: true})
	return classify(err)
}
