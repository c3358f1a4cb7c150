package registry

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ecr"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// ECRArgs configure NewECR.
type ECRArgs struct {
	// Name is the repository name (deterministic).
	Name string
	// KeepImages is how many images the lifecycle policy keeps.
	KeepImages int
}

// ECR is an ECR repository.
type ECR struct {
	pulumi.ResourceState
	// URL is <account>.dkr.ecr.<region>.amazonaws.com/<name>.
	URL pulumi.StringOutput `pulumi:"url"`
	ARN pulumi.StringOutput `pulumi:"arn"`
}

// LifecyclePolicy keeps the newest keep images and expires the rest.
func LifecyclePolicy(keep int) (string, error) {
	b, err := json.Marshal(map[string]any{"rules": []any{map[string]any{
		"rulePriority": 1, "description": fmt.Sprintf("keep the newest %d images", keep),
		"selection": map[string]any{"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
		"action":    map[string]any{"type": "expire"},
	}}})
	return string(b), err
}

// NewECR declares the repository: scanned on push, tags immutable (deploys
// reference digests; a tag never silently moves), old images expired, and
// force-deleted with the stack so destroy never stops on leftover images.
func NewECR(ctx *pulumi.Context, name string, args *ECRArgs, opts ...pulumi.ResourceOption) (*ECR, error) {
	if args == nil || args.Name == "" || args.KeepImages < 1 {
		return nil, fmt.Errorf("registry: ECR needs a name and KeepImages >= 1")
	}
	policy, err := LifecyclePolicy(args.KeepImages)
	if err != nil {
		return nil, err
	}
	r := &ECR{}
	if err := ctx.RegisterComponentResource("liftoff:registry:ECR", name, r, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(r)
	repo, err := ecr.NewRepository(ctx, name, &ecr.RepositoryArgs{Name: pulumi.String(args.Name),
		ImageTagMutability:         pulumi.String("IMMUTABLE"),
		ImageScanningConfiguration: &ecr.RepositoryImageScanningConfigurationArgs{ScanOnPush: pulumi.Bool(true)},
		EncryptionConfigurations:   ecr.RepositoryEncryptionConfigurationArray{ecr.RepositoryEncryptionConfigurationArgs{EncryptionType: pulumi.String("AES256")}},
		ForceDelete:                pulumi.Bool(true)}, child)
	if err != nil {
		return nil, err
	}
	if _, err := ecr.NewLifecyclePolicy(ctx, name, &ecr.LifecyclePolicyArgs{Repository: repo.Name, Policy: pulumi.String(policy)}, child); err != nil {
		return nil, err
	}
	r.URL, r.ARN = repo.RepositoryUrl, repo.Arn
	return r, ctx.RegisterResourceOutputs(r, pulumi.Map{"url": r.URL, "arn": r.ARN})
}
