// Package cache is the app's Valkey: in the cluster by default (NewInCluster),
// or ElastiCache on aws (NewElastiCache).
package cache

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/kube"
)

// InClusterArgs configure NewInCluster.
type InClusterArgs struct {
	Namespace    string
	StorageClass string
	// Image is the official valkey image, or one that takes valkey-server flags as arguments.
	Image string
}

// InCluster is a Valkey StatefulSet: a cache, so it keeps no snapshots.
type InCluster struct {
	pulumi.ResourceState
	URL pulumi.StringOutput `pulumi:"url"`
}

// NewInCluster declares Valkey in the namespace of the Kubernetes provider in opts.
func NewInCluster(ctx *pulumi.Context, name string, args *InClusterArgs, opts ...pulumi.ResourceOption) (*InCluster, error) {
	if args == nil || args.Namespace == "" || args.Image == "" {
		return nil, fmt.Errorf("cache: namespace and image are required")
	}
	c := &InCluster{}
	if err := ctx.RegisterComponentResource("liftoff:cache:InCluster", name, c, opts...); err != nil {
		return nil, err
	}
	_, _, err := kube.StatefulService{Name: "valkey", Namespace: args.Namespace, Image: args.Image, UID: 999, Port: 6379,
		Args:      pulumi.ToStringArray([]string{"--save", "", "--appendonly", "no", "--maxmemory", "200mb", "--maxmemory-policy", "allkeys-lru"}),
		MountPath: "/data", Size: "1Gi", StorageClass: args.StorageClass,
		Requests: pulumi.StringMap{"cpu": pulumi.String("50m"), "memory": pulumi.String("64Mi")}, Limits: pulumi.StringMap{"memory": pulumi.String("256Mi")},
		Probe: &corev1.ProbeArgs{TcpSocket: &corev1.TCPSocketActionArgs{Port: pulumi.String("main")}},
	}.Declare(ctx, name, pulumi.Parent(c))
	if err != nil {
		return nil, err
	}
	c.URL = pulumi.Sprintf("redis://valkey.%s.svc:6379/0", args.Namespace)
	return c, ctx.RegisterResourceOutputs(c, pulumi.Map{"url": c.URL})
}
