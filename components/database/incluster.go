// Package database is the app's PostgreSQL: RDS on aws (NewRDS), or a
// single PostgreSQL StatefulSet in the cluster for homelabs, existing
// clusters and cheap previews (NewInCluster).
package database

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// InClusterArgs configure NewInCluster.
type InClusterArgs struct {
	Namespace    string
	StorageClass string
	SizeGB       int
	// Image is the official postgres image, or one that behaves as it does.
	Image string
	// Password is the app's login's (a secret liftoff generates: letters and
	// digits); it is also the bootstrap superuser app's until liftoff
	// removes that one's password (launch's database logins).
	Password pulumi.StringInput
}

// InCluster is a PostgreSQL StatefulSet.
type InCluster struct {
	pulumi.ResourceState
	// URL is the DATABASE_URL the app uses (a secret).
	URL pulumi.StringOutput `pulumi:"url"`
}

// NewInCluster declares PostgreSQL in the namespace of the Kubernetes provider in opts.
func NewInCluster(ctx *pulumi.Context, name string, args *InClusterArgs, opts ...pulumi.ResourceOption) (*InCluster, error) {
	if args == nil || args.Namespace == "" || args.Image == "" || args.Password == nil {
		return nil, fmt.Errorf("database: namespace, image and password are required")
	}
	if args.SizeGB == 0 {
		args.SizeGB = 10
	}
	c := &InCluster{}
	if err := ctx.RegisterComponentResource("liftoff:database:InCluster", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	pw := pulumi.ToSecret(args.Password).(pulumi.StringOutput)
	secret, err := corev1.NewSecret(ctx, name, &corev1.SecretArgs{Metadata: kube.Meta("postgres", args.Namespace),
		StringData: pulumi.StringMap{"POSTGRES_PASSWORD": pw}}, child)
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
	_, _, err = kube.StatefulService{Name: "postgres", Namespace: args.Namespace, Image: args.Image, UID: 999, Port: 5432, Env: env,
		Admit:     &kube.Admission{Clients: true},
		MountPath: "/var/lib/postgresql/data", Size: fmt.Sprintf("%dGi", args.SizeGB), StorageClass: args.StorageClass,
		Requests: pulumi.StringMap{"cpu": pulumi.String("100m"), "memory": pulumi.String("256Mi")}, Limits: pulumi.StringMap{"memory": pulumi.String("1Gi")},
		Probe: &corev1.ProbeArgs{Exec: &corev1.ExecActionArgs{Command: pulumi.ToStringArray([]string{"pg_isready", "-U", "app", "-d", "app"})}},
	}.Declare(ctx, name, child)
	if err != nil {
		return nil, err
	}
	// The app logs in as the password's own role (outputs.DatabaseLogin),
	// which liftoff makes before the deploy (user app is the server's
	// superuser: liftoff's alone, over the pod's socket).
	c.URL = pulumi.ToSecret(pw.ApplyT(func(p string) string {
		return fmt.Sprintf("postgres://%s:%s@postgres.%s.svc:5432/app?sslmode=disable", outputs.DatabaseLogin(p), p, args.Namespace)
	})).(pulumi.StringOutput)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"url": c.URL})
}
