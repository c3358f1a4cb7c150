// Package cluster is an EKS control plane as liftoff runs it: pinned version,
// API authentication mode with access entries, secrets envelope-encrypted
// with a KMS key, control-plane logs in a tagged log group, an OIDC provider
// for IRSA, and the managed add-ons (NewAddons).
package cluster

import (
	"encoding/base64"
	"fmt"
	"regexp"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-dev/liftoff/components/irsa"
)

// ClusterAdminPolicy is the EKS access policy given to deployers.
const ClusterAdminPolicy = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"

// Args configure the control plane.
type Args struct {
	// Name is the EKS cluster name (deterministic; at most 100 characters).
	Name    string
	Version string // "1.34"
	Region  string
	// SubnetIDs are where the control plane places its network interfaces (all the VPC's subnets).
	SubnetIDs pulumi.StringArrayInput
	// ServiceCIDR is the Kubernetes service range; it must not overlap the VPC.
	ServiceCIDR string
	// LogTypes are the control-plane logs sent to CloudWatch.
	LogTypes []string
	// LogRetentionDays keeps control-plane logs this long.
	LogRetentionDays int
	// Admins are IAM principal ARNs given cluster-admin access entries.
	Admins []string
}

var versionRE = regexp.MustCompile(`^1\.\d{2}$`)

// Validate checks args before any resource is declared.
func (a *Args) Validate() error {
	switch {
	case a.Name == "" || len(a.Name) > 100:
		return fmt.Errorf("cluster: name %q must be 1-100 characters", a.Name)
	case !versionRE.MatchString(a.Version):
		return fmt.Errorf("cluster: version %q must be like 1.34", a.Version)
	case a.Region == "":
		return fmt.Errorf("cluster: region is required")
	case len(a.Admins) == 0:
		return fmt.Errorf("cluster: at least one admin principal is required, or nobody could reach the cluster")
	}
	return nil
}

// Cluster is the control plane and what other components need of it.
type Cluster struct {
	pulumi.ResourceState
	Name                 pulumi.StringOutput `pulumi:"name"`
	Endpoint             pulumi.StringOutput `pulumi:"endpoint"`
	CertificateAuthority pulumi.StringOutput `pulumi:"certificateAuthority"`
	// SecurityGroupID is the cluster security group, which managed nodes use.
	SecurityGroupID pulumi.StringOutput `pulumi:"securityGroupId"`
	OIDC            irsa.OIDC
	// Kubeconfig reaches the cluster with a token liftoff mints (`liftoff eks-token`).
	Kubeconfig pulumi.StringOutput `pulumi:"kubeconfig"`
	// EKS is the cluster resource, for DependsOn.
	EKS *eks.Cluster
}

// New declares the control plane.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	if args == nil {
		return nil, fmt.Errorf("cluster: args are required")
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{}
	if err := ctx.RegisterComponentResource("liftoff:cluster:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)

	key, err := kms.NewKey(ctx, name+"-secrets", &kms.KeyArgs{Description: pulumi.Sprintf("EKS secrets envelope encryption for %s", args.Name),
		EnableKeyRotation: pulumi.Bool(true), DeletionWindowInDays: pulumi.Int(7)}, child)
	if err != nil {
		return nil, err
	}
	role, err := iam.NewRole(ctx, name+"-control-plane", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(servicePrincipal("eks.amazonaws.com"))}, child)
	if err != nil {
		return nil, err
	}
	var deps []pulumi.Resource
	for _, p := range []string{"AmazonEKSClusterPolicy"} {
		a, err := iam.NewRolePolicyAttachment(ctx, name+"-"+p, &iam.RolePolicyAttachmentArgs{Role: role.Name, PolicyArn: pulumi.String("arn:aws:iam::aws:policy/" + p)}, child)
		if err != nil {
			return nil, err
		}
		deps = append(deps, a)
	}
	// Created before the cluster so EKS writes into it: tagged, with a
	// retention, and deleted with the stack instead of outliving it.
	logs, err := cloudwatch.NewLogGroup(ctx, name, &cloudwatch.LogGroupArgs{Name: pulumi.Sprintf("/aws/eks/%s/cluster", args.Name),
		RetentionInDays: pulumi.Int(args.LogRetentionDays)}, child)
	if err != nil {
		return nil, err
	}
	deps = append(deps, logs)
	cl, err := eks.NewCluster(ctx, name, &eks.ClusterArgs{
		Name: pulumi.String(args.Name), Version: pulumi.String(args.Version), RoleArn: role.Arn,
		AccessConfig: &eks.ClusterAccessConfigArgs{AuthenticationMode: pulumi.String("API"),
			// Admins get explicit entries below; an implicit creator entry would clash with them.
			BootstrapClusterCreatorAdminPermissions: pulumi.Bool(false)},
		EncryptionConfig: &eks.ClusterEncryptionConfigArgs{Resources: pulumi.StringArray{pulumi.String("secrets")},
			Provider: &eks.ClusterEncryptionConfigProviderArgs{KeyArn: key.Arn}},
		EnabledClusterLogTypes:  pulumi.ToStringArray(args.LogTypes),
		KubernetesNetworkConfig: &eks.ClusterKubernetesNetworkConfigArgs{ServiceIpv4Cidr: pulumi.String(args.ServiceCIDR)},
		VpcConfig: &eks.ClusterVpcConfigArgs{SubnetIds: args.SubnetIDs,
			EndpointPrivateAccess: pulumi.Bool(true), EndpointPublicAccess: pulumi.Bool(true)},
		UpgradePolicy: &eks.ClusterUpgradePolicyArgs{SupportType: pulumi.String("STANDARD")},
	}, child, pulumi.DependsOn(deps))
	if err != nil {
		return nil, err
	}
	for i, arn := range args.Admins {
		entry, err := eks.NewAccessEntry(ctx, fmt.Sprintf("%s-admin-%d", name, i), &eks.AccessEntryArgs{ClusterName: cl.Name, PrincipalArn: pulumi.String(arn), Type: pulumi.String("STANDARD")}, child)
		if err != nil {
			return nil, err
		}
		if _, err := eks.NewAccessPolicyAssociation(ctx, fmt.Sprintf("%s-admin-%d", name, i), &eks.AccessPolicyAssociationArgs{
			ClusterName: cl.Name, PrincipalArn: entry.PrincipalArn, PolicyArn: pulumi.String(ClusterAdminPolicy),
			AccessScope: &eks.AccessPolicyAssociationAccessScopeArgs{Type: pulumi.String("cluster")}}, child); err != nil {
			return nil, err
		}
	}
	issuer := cl.Identities.Index(pulumi.Int(0)).Oidcs().Index(pulumi.Int(0)).Issuer().Elem()
	// IAM trusts EKS's OIDC issuers through its own CA library, so no
	// thumbprint is pinned (a pinned one breaks when the issuer rotates).
	oidc, err := iam.NewOpenIdConnectProvider(ctx, name, &iam.OpenIdConnectProviderArgs{Url: issuer,
		ClientIdLists: pulumi.StringArray{pulumi.String("sts.amazonaws.com")}}, child)
	if err != nil {
		return nil, err
	}
	c.EKS = cl
	c.Name = cl.Name
	c.Endpoint = cl.Endpoint
	c.CertificateAuthority = cl.CertificateAuthority.Data().Elem()
	c.SecurityGroupID = cl.VpcConfig.ClusterSecurityGroupId().Elem()
	c.OIDC = irsa.OIDC{ARN: oidc.Arn, Issuer: issuer}
	c.Kubeconfig = pulumi.All(cl.Name, cl.Endpoint, c.CertificateAuthority).ApplyT(func(v []any) (string, error) {
		return Kubeconfig(v[0].(string), v[1].(string), v[2].(string), args.Region)
	}).(pulumi.StringOutput)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"name": c.Name, "endpoint": c.Endpoint, "certificateAuthority": c.CertificateAuthority,
		"securityGroupId": c.SecurityGroupID, "oidcProviderArn": c.OIDC.ARN, "kubeconfig": c.Kubeconfig})
}

// Kubeconfig is a kubeconfig for an EKS cluster whose credentials come from
// `liftoff eks-token`: a token minted in Go by presigning STS
// GetCallerIdentity, so neither the aws CLI nor a stored token is needed.
func Kubeconfig(clusterName, endpoint, caData, region string) (string, error) {
	if _, err := base64.StdEncoding.DecodeString(caData); err != nil {
		return "", fmt.Errorf("cluster %s: certificate authority is not base64: %w", clusterName, err)
	}
	doc := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": clusterName,
		"clusters": []any{map[string]any{"name": clusterName, "cluster": map[string]any{"server": endpoint, "certificate-authority-data": caData}}},
		"contexts": []any{map[string]any{"name": clusterName, "context": map[string]any{"cluster": clusterName, "user": clusterName}}},
		"users": []any{map[string]any{"name": clusterName, "user": map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "liftoff",
			"args":            []string{"eks-token", "--cluster", clusterName, "--region", region},
			"interactiveMode": "Never", "provideClusterInfo": false,
		}}}},
	}
	b, err := yaml.Marshal(doc)
	return string(b), err
}

func servicePrincipal(service string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":%q},"Action":"sts:AssumeRole"}]}`, service)
}
