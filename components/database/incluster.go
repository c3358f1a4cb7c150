// Package database is the app's PostgreSQL: RDS on aws (NewRDS), or a
// single PostgreSQL StatefulSet in the cluster for homelabs, existing
// clusters and cheap previews (NewInCluster).
package database

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
)

// PostgresImage is the pinned in-cluster PostgreSQL.
const PostgresImage = "postgres:16.9-bookworm"

// InClusterArgs configure NewInCluster.
type InClusterArgs struct {
	Namespace    string
	StorageClass string
	SizeGB       int
}

// InCluster is a PostgreSQL StatefulSet with a generated password.
type InCluster struct {
	pulumi.ResourceState
	// URL is the DATABASE_URL the app uses (a secret).
	URL pulumi.StringOutput `pulumi:"url"`
}

// NewInCluster declares PostgreSQL in the namespace of the Kubernetes provider in opts.
func NewInCluster(ctx *pulumi.Context, name string, args *InClusterArgs, opts ...pulumi.ResourceOption) (*InCluster, error) {
	if args == nil || args.Namespace == "" {
		return nil, fmt.Errorf("database: namespace is required")
	}
	if args.SizeGB == 0 {
		args.SizeGB = 10
	}
	c := &InCluster{}
	if err := ctx.RegisterComponentResource("liftoff:database:InCluster", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	pw, err := random.NewRandomPassword(ctx, name+"-password", &random.RandomPasswordArgs{Length: pulumi.Int(32), Special: pulumi.Bool(false)}, child)
	if err != nil {
		return nil, err
	}
	secret, err := corev1.NewSecret(ctx, name, &corev1.SecretArgs{Metadata: kube.Meta("postgres", args.Namespace),
		StringData: pulumi.StringMap{"POSTGRES_PASSWORD": pw.Result}}, child)
	if err != nil {
		return nil, err
	}
	env := corev1.EnvVarArray{
		corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_USER"), Value: pulumi.String("app")},
		corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_DB"), Value: pulumi.String("app")},
		corev1.EnvVarArgs{Name: pulumi.String("PGDATA"), Value: pulumi.String("/var/lib/postgresql/data/pgdata")},
		corev1.EnvVarArgs{Name: pulumi.String("POSTGRES_PASSWORD"), ValueFrom: &corev1.EnvVarSourceArgs{SecretKeyRef: &corev1.SecretKeySelectorArgs{
			Name: secret.Metadata.Name(), Key: pulumi.String("POSTGRES_PASSWORD")}}},
	}
	_, _, err = kube.StatefulService{Name: "postgres", Namespace: args.Namespace, Image: PostgresImage, UID: 999, Port: 5432, Env: env,
		MountPath: "/var/lib/postgresql/data", Size: fmt.Sprintf("%dGi", args.SizeGB), StorageClass: args.StorageClass,
		Requests: pulumi.StringMap{"cpu": pulumi.String("100m"), "memory": pulumi.String("256Mi")}, Limits: pulumi.StringMap{"memory": pulumi.String("1Gi")},
		Probe: &corev1.ProbeArgs{Exec: &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"pg_isready", "-U", "app", "-d", "app"})}, PeriodSeconds: pulumi.Int(10)},
	}.Declare(ctx, name, child)
	if err != nil {
		return nil, err
	}
	c.URL = pulumi.ToSecret(pulumi.Sprintf("postgres://app:%s@postgres.%s.svc:5432/app?sslmode=disable", pw.Result, args.Namespace)).(pulumi.StringOutput)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"url": c.URL})
}
