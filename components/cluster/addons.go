package cluster

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/eks"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/irsa"
)

// AddonVersions pins the managed add-ons for each EKS version liftoff
// supports. Bump them with the cluster version, after `aws eks
// describe-addon-versions --kubernetes-version 1.N`.
var AddonVersions = map[string]map[string]string{
	"1.34": {"vpc-cni": "v1.20.4-eksbuild.1", "kube-proxy": "v1.34.0-eksbuild.4", "coredns": "v1.12.3-eksbuild.1", "aws-ebs-csi-driver": "v1.50.1-eksbuild.1"},
	"1.33": {"vpc-cni": "v1.20.4-eksbuild.1", "kube-proxy": "v1.33.3-eksbuild.10", "coredns": "v1.12.3-eksbuild.1", "aws-ebs-csi-driver": "v1.50.1-eksbuild.1"},
	"1.32": {"vpc-cni": "v1.20.4-eksbuild.1", "kube-proxy": "v1.32.6-eksbuild.12", "coredns": "v1.11.4-eksbuild.22", "aws-ebs-csi-driver": "v1.50.1-eksbuild.1"},
}

// NetworkAddons are the add-ons nodes need before they can become Ready:
// the VPC CNI (with its own IRSA role, so nodes do not carry the CNI policy)
// and kube-proxy. Both are DaemonSets, so they go ACTIVE without nodes.
type NetworkAddons struct {
	pulumi.ResourceState
	Resources []pulumi.Resource
}

// NewNetworkAddons declares vpc-cni and kube-proxy.
func NewNetworkAddons(ctx *pulumi.Context, name string, c *Cluster, version string, opts ...pulumi.ResourceOption) (*NetworkAddons, error) {
	versions, ok := AddonVersions[version]
	if !ok {
		return nil, fmt.Errorf("cluster: no add-on versions pinned for EKS %s", version)
	}
	a := &NetworkAddons{}
	if err := ctx.RegisterComponentResource("liftoff:cluster:NetworkAddons", name, a, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(a)
	cniRole, err := irsa.NewRole(ctx, name+"-vpc-cni", &irsa.RoleArgs{OIDC: c.OIDC, Namespace: "kube-system", ServiceAccount: "aws-node",
		ManagedPolicies: []string{"arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"}}, child)
	if err != nil {
		return nil, err
	}
	cni, err := addon(ctx, name, c, "vpc-cni", versions, cniRole.Arn, child)
	if err != nil {
		return nil, err
	}
	proxy, err := addon(ctx, name, c, "kube-proxy", versions, nil, child)
	if err != nil {
		return nil, err
	}
	a.Resources = []pulumi.Resource{cni, proxy}
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{})
}

// Addons are the add-ons that need running nodes: CoreDNS and the EBS CSI
// driver, and the default gp3 StorageClass the driver serves.
type Addons struct {
	pulumi.ResourceState
	// StorageClass is the default StorageClass's name.
	StorageClass string
}

// AddonsArgs configure NewAddons.
type AddonsArgs struct {
	Cluster *Cluster
	Version string
	// Tags are put on every EBS volume the driver creates, so teardown can find them.
	Tags map[string]string
}

// NewAddons declares CoreDNS, the EBS CSI driver and a default gp3
// StorageClass. opts must carry the Kubernetes provider and a DependsOn on the nodes.
func NewAddons(ctx *pulumi.Context, name string, args *AddonsArgs, opts ...pulumi.ResourceOption) (*Addons, error) {
	versions, ok := AddonVersions[args.Version]
	if !ok {
		return nil, fmt.Errorf("cluster: no add-on versions pinned for EKS %s", args.Version)
	}
	a := &Addons{StorageClass: "gp3"}
	if err := ctx.RegisterComponentResource("liftoff:cluster:Addons", name, a, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(a)
	if _, err := addon(ctx, name, args.Cluster, "coredns", versions, nil, child); err != nil {
		return nil, err
	}
	ebsRole, err := irsa.NewRole(ctx, name+"-ebs-csi", &irsa.RoleArgs{OIDC: args.Cluster.OIDC, Namespace: "kube-system", ServiceAccount: "ebs-csi-controller-sa",
		ManagedPolicies: []string{"arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"}}, child)
	if err != nil {
		return nil, err
	}
	ebs, err := addon(ctx, name, args.Cluster, "aws-ebs-csi-driver", versions, ebsRole.Arn, child)
	if err != nil {
		return nil, err
	}
	params := pulumi.StringMap{"type": pulumi.String("gp3"), "encrypted": pulumi.String("true"), "fsType": pulumi.String("ext4")}
	i := 1
	for _, k := range slices.Sorted(maps.Keys(args.Tags)) {
		params[fmt.Sprintf("tagSpecification_%d", i)] = pulumi.String(k + "=" + args.Tags[k])
		i++
	}
	if _, err := storagev1.NewStorageClass(ctx, name+"-gp3", &storagev1.StorageClassArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(a.StorageClass),
			Annotations: pulumi.StringMap{"storageclass.kubernetes.io/is-default-class": pulumi.String("true")}},
		Provisioner: pulumi.String("ebs.csi.aws.com"), Parameters: params,
		// Volumes are created in the zone of the pod that first uses them.
		VolumeBindingMode: pulumi.String("WaitForFirstConsumer"), AllowVolumeExpansion: pulumi.Bool(true),
		ReclaimPolicy: pulumi.String("Delete"),
	}, child, pulumi.DependsOn([]pulumi.Resource{ebs})); err != nil {
		return nil, err
	}
	return a, ctx.RegisterResourceOutputs(a, pulumi.Map{"storageClass": pulumi.String(a.StorageClass)})
}

// addonValues configure add-ons: the VPC CNI enforces NetworkPolicies
// (its network policy agent), without which the policies liftoff declares
// for PostgreSQL, Valkey, the registry and the app count for nothing.
var addonValues = map[string]string{"vpc-cni": `{"enableNetworkPolicy":"true"}`}

func addon(ctx *pulumi.Context, prefix string, c *Cluster, addonName string, versions map[string]string, role pulumi.StringInput, opts ...pulumi.ResourceOption) (*eks.Addon, error) {
	args := &eks.AddonArgs{ClusterName: c.Name, AddonName: pulumi.String(addonName), AddonVersion: pulumi.String(versions[addonName]),
		// Take over what EKS installed by itself on create; keep user edits out on update.
		ResolveConflictsOnCreate: pulumi.String("OVERWRITE"), ResolveConflictsOnUpdate: pulumi.String("OVERWRITE")}
	if role != nil {
		args.ServiceAccountRoleArn = role
	}
	if values, ok := addonValues[addonName]; ok {
		args.ConfigurationValues = pulumi.String(values)
	}
	return eks.NewAddon(ctx, prefix+"-"+addonName, args, opts...)
}
