// Package registry is where images go: ECR on aws (NewECR), or an OCI
// registry running in the cluster (NewInCluster) for homelabs and clusters
// without one.
package registry

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// NodePort is where every node reaches the registry: containerd treats
// localhost registries as plain-HTTP, so pods pull localhost:30500/...
// One cluster has one: a second stack's registry is refused before up
// changes anything (internal/launch's ownership check).
const NodePort = outputs.RegistryNodePort

// InClusterArgs configure NewInCluster.
type InClusterArgs struct {
	Namespace    string
	StorageClass string
	SizeGB       int
	// Host is the address nodes and liftoff use (default localhost:30500).
	Host string
	// Image is CNCF distribution's registry, or an image that reads its REGISTRY_* variables.
	Image string
	// Password is user liftoff's (a secret liftoff generates: letters and digits).
	Password pulumi.StringInput
	// Blocks are the sources that pull (nodes, outside the pod ranges):
	// with them, a NetworkPolicy keeps every pod out; without, the
	// registry's password alone guards it.
	Blocks []config.Block
}

// InCluster is an OCI registry with htpasswd authentication.
type InCluster struct {
	pulumi.ResourceState
	// Host is the registry's address, e.g. localhost:30500.
	Host     pulumi.StringOutput `pulumi:"host"`
	Username pulumi.StringOutput `pulumi:"username"`
	Password pulumi.StringOutput `pulumi:"password"`
}

// NewInCluster declares the registry in the namespace of the Kubernetes provider in opts.
func NewInCluster(ctx *pulumi.Context, name string, args *InClusterArgs, opts ...pulumi.ResourceOption) (*InCluster, error) {
	if args == nil || args.Namespace == "" || args.Image == "" || args.Password == nil {
		return nil, fmt.Errorf("registry: namespace, image and password are required")
	}
	if args.SizeGB == 0 {
		args.SizeGB = 20
	}
	if args.Host == "" {
		args.Host = fmt.Sprintf("localhost:%d", NodePort)
	}
	r := &InCluster{}
	if err := ctx.RegisterComponentResource("liftoff:registry:InCluster", name, r, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(r)
	htpasswd := pulumi.ToSecret(args.Password.ToStringOutput().ApplyT(func(p string) string { return htpasswdLine("liftoff", p) })).(pulumi.StringOutput)
	auth, err := corev1.NewSecret(ctx, name+"-htpasswd", &corev1.SecretArgs{Metadata: kube.Meta("registry-auth", args.Namespace),
		StringData: pulumi.StringMap{"htpasswd": htpasswd}}, child)
	if err != nil {
		return nil, err
	}
	env := corev1.EnvVarArray{
		corev1.EnvVarArgs{Name: pulumi.String("REGISTRY_AUTH"), Value: pulumi.String("htpasswd")},
		corev1.EnvVarArgs{Name: pulumi.String("REGISTRY_AUTH_HTPASSWD_REALM"), Value: pulumi.String("liftoff")},
		corev1.EnvVarArgs{Name: pulumi.String("REGISTRY_AUTH_HTPASSWD_PATH"), Value: pulumi.String("/auth/htpasswd")},
		corev1.EnvVarArgs{Name: pulumi.String("REGISTRY_STORAGE_DELETE_ENABLED"), Value: pulumi.String("true")},
	}
	_, _, err = kube.StatefulService{Name: "registry", Namespace: args.Namespace, Image: args.Image, UID: 1000, Port: 5000, Env: env,
		MountPath: "/var/lib/registry", Size: fmt.Sprintf("%dGi", args.SizeGB), StorageClass: args.StorageClass,
		Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")}, Limits: pulumi.StringMap{"memory": pulumi.String("256Mi")},
		Probe:       &corev1.ProbeArgs{TcpSocket: &corev1.TCPSocketActionArgs{Port: pulumi.String("main")}},
		ServiceType: "NodePort", NodePort: NodePort, Admit: admit(args.Blocks),
		ExtraVolumes: corev1.VolumeArray{corev1.VolumeArgs{Name: pulumi.String("auth"), Secret: &corev1.SecretVolumeSourceArgs{SecretName: auth.Metadata.Name()}}},
		ExtraMounts:  corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("auth"), MountPath: pulumi.String("/auth"), ReadOnly: pulumi.Bool(true)}},
	}.Declare(ctx, name, child)
	if err != nil {
		return nil, err
	}
	r.Host = pulumi.String(args.Host).ToStringOutput()
	r.Username = pulumi.String("liftoff").ToStringOutput()
	r.Password = pulumi.ToSecret(args.Password).(pulumi.StringOutput)
	return r, ctx.RegisterResourceOutputs(r, pulumi.Map{"host": r.Host, "username": r.Username, "password": r.Password})
}

// admit is the registry's admission: the nodes (pushes go through a
// port-forward, inside the pod), when they can be told from the pods.
func admit(blocks []config.Block) *kube.Admission {
	if len(blocks) == 0 {
		return nil
	}
	return &kube.Admission{Blocks: blocks}
}
