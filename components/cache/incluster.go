// Package cache is the app's Valkey: in the cluster by default (NewInCluster),
// or ElastiCache on aws (NewElastiCache).
package cache

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/config"
)

// InClusterArgs configure NewInCluster.
type InClusterArgs struct {
	Namespace    string
	StorageClass string
	// Image is the official valkey image, or one that takes valkey-server flags as arguments.
	Image string
	// Password is user app's (a secret liftoff generates: letters and digits).
	Password pulumi.StringInput
	// Blocks admit sources by address besides the pods with the client
	// label (none by default: only those pods reach Valkey).
	Blocks []config.Block
}

// InCluster is a Valkey StatefulSet: a cache, so it keeps no snapshots.
// The default user is off: only user app, with its password, gets in (the
// app trusts a cache entry over the database, so whoever writes the cache
// decides where a link goes), and only from the pods with the valkey
// client label.
type InCluster struct {
	pulumi.ResourceState
	URL pulumi.StringOutput `pulumi:"url"`
}

// NewInCluster declares Valkey in the namespace of the Kubernetes provider in opts.
func NewInCluster(ctx *pulumi.Context, name string, args *InClusterArgs, opts ...pulumi.ResourceOption) (*InCluster, error) {
	if args == nil || args.Namespace == "" || args.Image == "" || args.Password == nil {
		return nil, fmt.Errorf("cache: namespace, image and password are required")
	}
	c := &InCluster{}
	if err := ctx.RegisterComponentResource("liftoff:cache:InCluster", name, c, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(c)
	pw := pulumi.ToSecret(args.Password).(pulumi.StringOutput)
	secret, err := corev1.NewSecret(ctx, name, &corev1.SecretArgs{Metadata: kube.Meta("valkey", args.Namespace),
		StringData: pulumi.StringMap{"VALKEY_PASSWORD": pw}}, child)
	if err != nil {
		return nil, err
	}
	env := corev1.EnvVarArray{corev1.EnvVarArgs{Name: pulumi.String("VALKEY_PASSWORD"), ValueFrom: &corev1.EnvVarSourceArgs{
		SecretKeyRef: &corev1.SecretKeySelectorArgs{Name: secret.Metadata.Name(), Key: pulumi.String("VALKEY_PASSWORD")}}}}
	// The password reaches the server through $(VALKEY_PASSWORD), expanded
	// by the kubelet: the pod spec shows the variable, not the value. User
	// app may do everything but administer the server (CONFIG, SHUTDOWN,
	// DEBUG...); liftoff's restore empties the cache with FLUSHALL.
	_, _, err = kube.StatefulService{Name: "valkey", Namespace: args.Namespace, Image: args.Image, UID: 999, Port: 6379, Env: env,
		Admit: &kube.Admission{Clients: true, Blocks: args.Blocks},
		Args: pulumi.ToStringArray([]string{"--save", "", "--appendonly", "no", "--maxmemory", "200mb", "--maxmemory-policy", "allkeys-lru",
			"--user", "default", "off", "--user", "app", "on", ">$(VALKEY_PASSWORD)", "~*", "&*", "+@all", "-@admin"}),
		MountPath: "/data", Size: "1Gi", StorageClass: args.StorageClass,
		Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")}, Limits: pulumi.StringMap{"memory": pulumi.String("256Mi")},
		Probe: &corev1.ProbeArgs{TcpSocket: &corev1.TCPSocketActionArgs{Port: pulumi.String("main")}},
	}.Declare(ctx, name, child)
	if err != nil {
		return nil, err
	}
	c.URL = pulumi.ToSecret(pulumi.Sprintf("redis://app:%s@valkey.%s.svc:6379/0", pw, args.Namespace)).(pulumi.StringOutput)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"url": c.URL})
}
