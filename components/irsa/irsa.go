// Package irsa declares IAM roles for Kubernetes service accounts (IRSA): a
// role whose trust policy lets exactly one service account, through the
// cluster's OIDC provider, assume it.
package irsa

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// OIDC is a cluster's IAM OIDC provider.
type OIDC struct {
	ARN    pulumi.StringOutput
	Issuer pulumi.StringOutput // https://oidc.eks.<region>.amazonaws.com/id/<id>
}

// RoleArgs configure NewRole.
type RoleArgs struct {
	OIDC           OIDC
	Namespace      string
	ServiceAccount string
	// ManagedPolicies are AWS-managed or customer policy ARNs to attach.
	ManagedPolicies []string
	// Policy is an inline policy document (JSON), optional.
	Policy pulumi.StringInput
}

// TrustPolicy is the assume-role policy for one service account: both the
// subject and the audience are pinned, so no other service account (and no
// token minted for another audience) can assume the role.
func TrustPolicy(oidcARN, issuer, namespace, serviceAccount string) (string, error) {
	host := strings.TrimPrefix(issuer, "https://")
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": oidcARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]string{
				host + ":sub": fmt.Sprintf("system:serviceaccount:%s:%s", namespace, serviceAccount),
				host + ":aud": "sts.amazonaws.com",
			}},
		}},
	}
	b, err := json.Marshal(doc)
	return string(b), err
}

// NewRole declares the role and its policies, as children of the caller's parent in opts.
func NewRole(ctx *pulumi.Context, name string, args *RoleArgs, opts ...pulumi.ResourceOption) (*iam.Role, error) {
	if args.Namespace == "" || args.ServiceAccount == "" {
		return nil, fmt.Errorf("irsa %s: namespace and service account are required", name)
	}
	trust := pulumi.All(args.OIDC.ARN, args.OIDC.Issuer).ApplyT(func(v []any) (string, error) {
		return TrustPolicy(v[0].(string), v[1].(string), args.Namespace, args.ServiceAccount)
	}).(pulumi.StringOutput)
	role, err := iam.NewRole(ctx, name, &iam.RoleArgs{AssumeRolePolicy: trust,
		Description: pulumi.Sprintf("IRSA for %s/%s", args.Namespace, args.ServiceAccount)}, opts...)
	if err != nil {
		return nil, err
	}
	for _, arn := range args.ManagedPolicies {
		short := arn[strings.LastIndex(arn, "/")+1:]
		if _, err := iam.NewRolePolicyAttachment(ctx, name+"-"+short, &iam.RolePolicyAttachmentArgs{Role: role.Name, PolicyArn: pulumi.String(arn)}, opts...); err != nil {
			return nil, err
		}
	}
	if args.Policy != nil {
		if _, err := iam.NewRolePolicy(ctx, name, &iam.RolePolicyArgs{Role: role.Name, Policy: args.Policy}, opts...); err != nil {
			return nil, err
		}
	}
	return role, nil
}
