package testenv

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The real node's NetworkPolicy agent (ClusterOptions.NetworkPolicies):
// kube-network-policies v0.8.0, the agent kind runs, built by `make
// testcluster` from its module (tools/netpol). It evaluates the first
// packet of every connection in user space, against the cluster's
// NetworkPolicies, and gives the kernel its verdict.
//
// How the packets reach it is the one thing done differently from upstream:
// the agent steers them with nftables' queue statement, which this
// machine's kernel lacks (`nft add rule ... queue` fails), so its own table
// is never installed (it logs the failure and goes on listening). The node
// steers them instead with iptables' NFQUEUE target, which this kernel has:
// every new connection forwarded in the node's network namespace (pod to
// pod, host to pod) goes to the agent's queue, without bypass, so no
// connection passes unjudged. Connections the node itself opens (kubelet
// probes, containerd's pulls) are not queued; upstream admits those too.
const (
	netpolAgent = "kube-network-policies"
	netpolQueue = "100"
)

// startNetworkPolicyAgent runs the agent in the node's network namespace,
// as a ServiceAccount that may read what it evaluates, then steers new
// forwarded connections to it.
func (c *Cluster) startNetworkPolicyAgent(bin, apiURL string, p *pki) error {
	n := c.Node
	agent := filepath.Join(bin, netpolAgent)
	if _, err := os.Stat(agent); err != nil {
		return fmt.Errorf("the NetworkPolicy agent %s is missing: run `make testcluster` (make test does it for you)", agent)
	}
	token, err := c.netpolToken(context.Background())
	if err != nil {
		return fmt.Errorf("the NetworkPolicy agent's identity: %w", err)
	}
	dir := n.path("netpol")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := os.ReadFile(p.path("ca.crt"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), ca, 0o644); err != nil {
		return err
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		return err
	}
	// The agent reads its identity only where a pod has it
	// (/var/run/secrets/kubernetes.io/serviceaccount): a mount namespace of
	// its own, with an empty /run, gives it that path without touching the
	// machine's.
	script := `mount -t tmpfs -o mode=0755 tmpfs /run && d=/run/secrets/kubernetes.io/serviceaccount && mkdir -p $d && cp "$0/token" "$0/ca.crt" $d/ && exec "$1" --hostname-override "$2" --disable-nri --nfqueue-id ` + netpolQueue + ` --metrics-bind-address "$3"`
	metrics := n.IP + ":9080"
	c.NetworkPolicyMetrics = "http://" + metrics + "/metrics"
	proc, err := startProcess(n.path("netpol.log"), netpolAgent,
		n.inNode("unshare", "--mount", "--propagation", "private", "sh", "-c", script, dir, agent, n.Name, metrics),
		nil, []string{"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()},
		httpOK(c.NetworkPolicyMetrics, nil))
	if n.procs = append(n.procs, proc); err != nil {
		return err
	}
	// First in FORWARD: before kube-proxy's rules accept what it marked.
	return runCmd("nsenter", "--net="+n.netnsPath(), "--", "iptables", "-w", "-I", "FORWARD", "1",
		"-m", "conntrack", "--ctstate", "NEW", "-j", "NFQUEUE", "--queue-num", netpolQueue)
}

// netpolToken makes the agent's ServiceAccount, with read access to pods,
// namespaces, nodes and NetworkPolicies, and returns a token for it.
func (c *Cluster) netpolToken(ctx context.Context) (string, error) {
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: netpolAgent}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "namespaces", "nodes"}, Verbs: read},
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
	}}
	if _, err := c.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	return c.serviceAccountToken(ctx, "kube-system", netpolAgent, netpolAgent)
}
