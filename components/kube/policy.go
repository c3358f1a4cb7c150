package kube

import (
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// Admission is who may reach a service's port; a NetworkPolicy on the
// service's pods enforces it, and everything else is refused.
type Admission struct {
	// Clients admits the pods of the service's namespace that carry the
	// service's client label (outputs.ClientLabel(name) = "true").
	Clients bool
	// Blocks admit sources by address: what is not a pod (nodes pulling,
	// the API server), when the cluster's pod ranges are known.
	Blocks []config.Block
}

// declarePolicy admits a to name's pods on port; nothing else reaches them.
func declarePolicy(ctx *pulumi.Context, prefix, name, namespace string, port int, a Admission, opts ...pulumi.ResourceOption) error {
	var from networkingv1.NetworkPolicyPeerArray
	if a.Clients {
		from = append(from, networkingv1.NetworkPolicyPeerArgs{PodSelector: &metav1.LabelSelectorArgs{
			MatchLabels: pulumi.StringMap{outputs.ClientLabel(name): pulumi.String("true")}}})
	}
	for _, b := range a.Blocks {
		from = append(from, networkingv1.NetworkPolicyPeerArgs{IpBlock: &networkingv1.IPBlockArgs{
			Cidr: pulumi.String(b.CIDR), Except: pulumi.ToStringArray(b.Except)}})
	}
	rules := networkingv1.NetworkPolicyIngressRuleArray{}
	if len(from) > 0 {
		rules = append(rules, networkingv1.NetworkPolicyIngressRuleArgs{From: from,
			Ports: networkingv1.NetworkPolicyPortArray{networkingv1.NetworkPolicyPortArgs{Port: pulumi.Int(port), Protocol: pulumi.String("TCP")}}})
	}
	_, err := networkingv1.NewNetworkPolicy(ctx, prefix+"-policy", &networkingv1.NetworkPolicyArgs{
		Metadata: Meta(name, namespace),
		Spec: &networkingv1.NetworkPolicySpecArgs{
			PodSelector: &metav1.LabelSelectorArgs{MatchLabels: Labels(name)},
			PolicyTypes: pulumi.ToStringArray([]string{"Ingress"}),
			Ingress:     rules,
		},
	}, opts...)
	return err
}
