// Package homelab is the Pulumi program of the homelab target: k3s installed
// over SSH on the user's own machines (components/k3s), then the same
// in-cluster registry, database, cache, secrets and observability as the
// kubeconfig target, on k3s's local-path storage.
package homelab

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/k3s"
	"github.com/liftoff-dev/liftoff/components/kube"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// RegistryMirror is where nodes pull the in-cluster registry's images: its
// NodePort on every node, plain HTTP on localhost as containerd allows.
const RegistryMirror = "localhost:30500"

// Root is the stack's root component.
type Root struct {
	pulumi.ResourceState
}

// Program declares the homelab stack.
func Program(ctx *pulumi.Context, cfg *config.Stack, facts target.Facts) error {
	h := settings(cfg)
	if h.ImageDelivery == "import" {
		return fmt.Errorf("liftoff:imageDelivery import: liftoff up ships images through the in-cluster registry only so far (fix: liftoff config rm imageDelivery); see README, homelab")
	}
	t := &Root{}
	if err := ctx.RegisterComponentResource("liftoff:homelab:Target", ctx.Stack(), t); err != nil {
		return err
	}
	token, err := incluster.Generated(h.Token, "liftoff:k3sToken")
	if err != nil {
		return err
	}
	args := &k3s.Args{Version: h.K3sVersion, Channel: h.K3sChannel, TLSSANs: h.TLSSANs, AirgapBinary: remote.ExpandHome(h.AirgapBinary), AirgapImages: remote.ExpandHome(h.AirgapImages),
		Context: ctx.Stack(), HasSudoPassword: h.SudoPassword.IsSet(), Token: token}
	if h.SudoPassword.IsSet() {
		args.SudoPassword = pulumi.ToSecret(pulumi.String(h.SudoPassword.Reveal())).(pulumi.StringOutput)
	}
	if cfg.Registry.Repository == "" {
		args.RegistryMirror = RegistryMirror
	}
	for _, n := range h.Nodes {
		node := k3s.Node{Name: n.Name, Host: n.Host, Port: n.Port, User: n.User, Role: n.Role,
			HostKey: facts.HostKeys[net.JoinHostPort(n.Host, strconv.Itoa(n.Port))]}
		if n.Key != "" {
			b, err := os.ReadFile(remote.ExpandHome(n.Key))
			if err != nil {
				return fmt.Errorf("liftoff:nodes key of %s: %w (fix: set the path of a private key the host authorises, or leave key empty to use ssh-agent)", n.Host, err)
			}
			node.PrivateKey = pulumi.ToSecret(pulumi.String(string(b))).(pulumi.StringOutput)
		}
		args.Nodes = append(args.Nodes, node)
	}
	cluster, err := k3s.New(ctx, "k3s", args, pulumi.Parent(t))
	if err != nil {
		return err
	}
	prov, err := kube.NewProvider(ctx, "k3s", &kubernetes.ProviderArgs{Kubeconfig: cluster.Kubeconfig},
		pulumi.Parent(t), pulumi.DependsOn([]pulumi.Resource{cluster}))
	if err != nil {
		return err
	}
	outs := pulumi.Map{
		outputs.Target: pulumi.String(string(cfg.Target)), outputs.App: pulumi.String(cfg.App.Name), outputs.Namespace: pulumi.String(cfg.App.Namespace),
		outputs.KubeconfigContent: cluster.Kubeconfig, outputs.Context: pulumi.String(ctx.Stack()), "server": cluster.Server,
		"nodes": cluster.Nodes, "hostKeys": cluster.HostKeys,
		outputs.Database: pulumi.String(cfg.Database.Mode), outputs.Cache: pulumi.String(cfg.Cache.Mode),
		outputs.Registry: pulumi.String(cfg.Registry.Repository), outputs.RegistryInsecure: pulumi.Bool(cfg.Registry.Insecure),
		outputs.AppSecretName: pulumi.String(outputs.EnvSecret(cfg.App.Name)), outputs.AppSecretManaged: pulumi.Bool(false),
		outputs.StorageClass: pulumi.String(cfg.StorageClass), outputs.IngressClass: pulumi.String("traefik"), outputs.PreviewDomain: pulumi.String(cfg.PreviewDomain),
	}
	incluster.NetworkOutputs(cfg.Network, outs)
	if err := incluster.InCluster(ctx, t, prov, cfg, outs); err != nil {
		return err
	}
	return incluster.Export(ctx, t, outs)
}
