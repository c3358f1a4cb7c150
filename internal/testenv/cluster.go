package testenv

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

//go:embed kwok/*.yaml
var kwokStages embed.FS

// Cluster is a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler) with the nodes a test asks for:
// one real node, whose pods run for real (see Node), and simulated kwok
// nodes, on which Deployments roll out, pods become Ready and EndpointSlices
// fill, but no container runs. The node-lifecycle controller runs, so the
// not-ready taint that admission puts on new nodes is lifted once they are Ready.
type Cluster struct {
	Dir        string
	Kubeconfig string
	Context    string
	Rest       *rest.Config
	Client     kubernetes.Interface
	// Nodes are the kwok nodes' names.
	Nodes []string
	// Node is the real node (nil without ClusterOptions.RealNode).
	Node *Node
	// NetworkPolicyMetrics is the node's NetworkPolicy agent's metrics URL,
	// with its verdicts (kube_network_policies_packet_count); empty when
	// the node does not enforce NetworkPolicies.
	NetworkPolicyMetrics string
	// Registry is a plain-HTTP registry on the real node's host end of the
	// veth, which the node's containerd pulls from (nil without a real node).
	Registry *Registry
	// ForwardPort is where kwok sends port-forwards to pods named
	// registry-0 (port 5000): a test listens there to stand in for the
	// in-cluster registry.
	ForwardPort int
	procs       []*Process
	dns         *clusterDNS
	storage     *localStorage
}

// ClusterOptions say which nodes a cluster has.
type ClusterOptions struct {
	// RealNode adds one real node: containerd, kubelet and kube-proxy in a
	// network namespace of its own. It needs root.
	RealNode bool
	// NetworkPolicies has the real node enforce NetworkPolicies, as k3s
	// and a cluster with Calico or Cilium do (netpol.go); without it, as
	// with a plain bridge CNI plugin, they are stored and ignored.
	NetworkPolicies bool
	// Kwok is how many simulated nodes to add. Beside a real node they carry
	// KwokTaint, so only workloads that tolerate it (scale tests) land there.
	Kwok int
}

// KwokTaint keeps workloads off the kwok nodes of a cluster with a real node;
// a pod that tolerates it and selects KwokLabel runs simulated.
const KwokTaint = "kwok.x-k8s.io/node"

// KwokLabel (type=kwok) and RealLabel (type=real) select a kind of node.
var (
	KwokLabel = map[string]string{"type": "kwok"}
	RealLabel = map[string]string{"type": "real"}
)

// KwokOnly is the cluster most rollout logic is tested on: three kwok nodes.
var KwokOnly = ClusterOptions{Kwok: 3}

// StartCluster starts a cluster of three kwok nodes for one test.
func StartCluster(t testing.TB) *Cluster { return StartClusterWith(t, KwokOnly) }

// StartClusterWith starts a cluster with the nodes opts ask for, for one test.
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	c, err := NewCluster(t.TempDir(), RepoRoot(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// MainWithCluster is a TestMain body for a package whose tests share one
// cluster (each in its own namespace): it starts the cluster, hands it to
// set, runs the tests and stops it, returning the exit code.
func MainWithCluster(m *testing.M, opts ClusterOptions, set func(*Cluster)) int {
	root, err := Root()
	var c *Cluster
	if err == nil {
		dir, _ := os.MkdirTemp("", "test-cluster")
		c, err = NewCluster(dir, root, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "test cluster:", err)
		return 1
	}
	defer os.RemoveAll(c.Dir)
	defer c.Close()
	set(c)
	return m.Run()
}

// NewCluster starts a cluster in dir with the binaries from `make testcluster`
// under repo/.cache/bin; Close stops it. For TestMain, where no test exists yet.
func NewCluster(dir, repo string, opts ClusterOptions) (_ *Cluster, err error) {
	bin := filepath.Join(repo, ".cache", "bin")
	need := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	if opts.Kwok > 0 {
		need = append(need, "kwok")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make testcluster` (make test does it for you)", filepath.Join(bin, b))
		}
	}
	etcd, err := findCommand("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd not found: apt-get install etcd-server (make test does it when root)")
	}
	c := &Cluster{Dir: dir, Context: "liftoff-test"}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	// The API server listens where its nodes reach it: the real node's host
	// end of the veth, or loopback for kwok nodes alone.
	apiHost, serviceCIDR := "127.0.0.1", "10.96.0.0/16"
	// The kubernetes Service's endpoint: the API server's own address where
	// pods reach it (the real node's), which it keeps up to date as a real
	// one does; none on loopback, which no pod could reach.
	reconciler := "none"
	var pause string
	if opts.RealNode {
		if pause, err = pauseLayout(repo); err != nil {
			return nil, err
		}
		if c.Node, err = newNodeNetwork(bin); err != nil {
			return nil, fmt.Errorf("real node: %w", err)
		}
		apiHost, serviceCIDR, reconciler = c.Node.HostIP, c.Node.ServiceCIDR, "lease"
	}
	pki, err := writePKI(dir, []net.IP{net.ParseIP(apiHost), firstIP(serviceCIDR)})
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(7)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	c.ForwardPort = ports[6]
	apiURL := fmt.Sprintf("https://%s", net.JoinHostPort(apiHost, strconv.Itoa(apiPort)))
	log := func(n string) string { return filepath.Join(dir, n+".log") }

	p, err := startProcess(log("etcd"), "etcd", []string{etcd, "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient), "--advertise-client-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer), "--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", etcdPeer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", etcdPeer), "--unsafe-no-fsync", "--quota-backend-bytes", "1073741824"},
		nil, []string{"ETCD_UNSUPPORTED_ARCH=" + goarch()}, httpOK(fmt.Sprintf("http://127.0.0.1:%d/health", etcdClient), nil))
	if c.procs = append(c.procs, p); err != nil {
		return nil, err
	}

	admin, err := pki.tlsClient()
	if err != nil {
		return nil, err
	}
	p, err = startProcess(log("kube-apiserver"), "kube-apiserver", []string{filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", etcdClient),
		"--bind-address", apiHost, "--advertise-address", apiHost, "--secure-port", strconv.Itoa(apiPort),
		"--cert-dir", filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file", pki.path("apiserver.crt"), "--tls-private-key-file", pki.path("apiserver.key"), "--client-ca-file", pki.path("ca.crt"),
		"--service-account-key-file", pki.path("sa.pub"), "--service-account-signing-key-file", pki.path("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range", serviceCIDR, "--authorization-mode", "Node,RBAC", "--allow-privileged",
		"--profiling=false", "--endpoint-reconciler-type", reconciler,
		// Logs, exec and port-forwards go to the kubelet by its node IP, never
		// through the machine's DNS resolver; the API server proves itself
		// to kubelets with its own client certificate.
		"--kubelet-preferred-address-types", "InternalIP,Hostname",
		"--kubelet-client-certificate", pki.path("apiserver-kubelet-client.crt"), "--kubelet-client-key", pki.path("apiserver-kubelet-client.key"),
		// The aggregation layer, as kubeadm sets it up: the metrics API of a
		// metrics-server pod is reached at its endpoint (the host routes to
		// the node's pods), with a client certificate only it may present.
		"--requestheader-client-ca-file", pki.path("ca.crt"), "--requestheader-allowed-names", frontProxyClient,
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", pki.path("front-proxy-client.crt"), "--proxy-client-key-file", pki.path("front-proxy-client.key"),
		"--enable-aggregator-routing=true",
		// Debian's etcd 3.4 lacks the progress notifications that streaming
		// lists need: with WatchList on, every client watch fails and waits for
		// the next relist, and kwok sees new pods up to 15s late.
		"--feature-gates", "WatchList=false"},
		nil, nil, httpOK(apiURL+"/readyz", admin))
	if c.procs = append(c.procs, p); err != nil {
		return nil, err
	}

	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := pki.writeKubeconfig(c.Kubeconfig, apiURL, c.Context); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.Rest = cfg
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}

	p, err = startProcess(log("kube-controller-manager"), "kube-controller-manager", []string{filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(kcmPort),
		"--service-account-private-key-file", pki.path("sa.key"), "--root-ca-file", pki.path("ca.crt"),
		"--use-service-account-credentials=false", "--controllers", "*,-nodeipam",
		"--concurrent-deployment-syncs", "10", "--concurrent-replicaset-syncs", "10", "--kube-api-qps", "100", "--kube-api-burst", "200",
		// Autoscalers scale down after 30s of lower load instead of 5 min,
		// so the autoscaling test sees a whole cycle; scale-up is as shipped.
		"--horizontal-pod-autoscaler-downscale-stabilization", "30s"},
		nil, nil, func() error {
			_, err := c.Client.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
			return err
		})
	if c.procs = append(c.procs, p); err != nil {
		return nil, err
	}
	p, err = startProcess(log("kube-scheduler"), "kube-scheduler", []string{filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig", c.Kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(schedPort),
		"--kube-api-qps", "100", "--kube-api-burst", "200"},
		nil, nil, httpOK(fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), nil))
	if c.procs = append(c.procs, p); err != nil {
		return nil, err
	}

	if opts.RealNode {
		if err := c.startRealNode(bin, apiURL, pki, pause); err != nil {
			return nil, fmt.Errorf("real node %s: %w", c.Node.Name, err)
		}
		if opts.NetworkPolicies {
			if err := c.startNetworkPolicyAgent(bin, apiURL, pki); err != nil {
				return nil, fmt.Errorf("real node %s: %w", c.Node.Name, err)
			}
		}
	} else if opts.NetworkPolicies {
		return nil, errors.New("testenv: NetworkPolicies are enforced by the real node: set RealNode too")
	}
	if opts.Kwok > 0 {
		stages := filepath.Join(dir, "kwok-stages.yaml")
		if err := writeStages(stages, c.ForwardPort); err != nil {
			return nil, err
		}
		p, err = startProcess(log("kwok"), "kwok", []string{filepath.Join(bin, "kwok"),
			"--kubeconfig", c.Kubeconfig, "--config", stages, "--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake", "--cidr", "10.244.0.0/16",
			// The nodes' kubelet endpoint is kwok's own server on loopback, so the
			// API server's log and exec requests never leave this machine.
			"--node-ip", "127.0.0.1", "--node-port", strconv.Itoa(kwokPort),
			"--server-address", fmt.Sprintf("127.0.0.1:%d", kwokPort), "--node-lease-duration-seconds", "40"},
			nil, nil, httpOK(fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort), nil))
		if c.procs = append(c.procs, p); err != nil {
			return nil, err
		}
		for i := range opts.Kwok {
			name := fmt.Sprintf("kwok-node-%d", i)
			if err := c.addNode(name, opts.RealNode); err != nil {
				return nil, err
			}
			c.Nodes = append(c.Nodes, name)
		}
	}
	return c, c.waitNodesReady()
}

// startRealNode gives the node its registry (with the pause image in it)
// and its DNS on the host end of the veth, then starts it.
func (c *Cluster) startRealNode(bin, apiURL string, pki *pki, pause string) error {
	n := c.Node
	var err error
	if c.Registry, err = NewRegistry(net.JoinHostPort(n.HostIP, "0")); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if c.dns, err = startClusterDNS(n.HostIP, c.Client); err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	if c.storage, err = startLocalStorage(context.Background(), c.Client, n.Name, n.path("volumes")); err != nil {
		return err
	}
	ref, err := pushLayout(pause, c.Registry.Host+"/liftoff/pause")
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	return n.start(context.Background(), c, nodeStart{bin: bin, apiURL: apiURL, pki: pki, registry: c.Registry.Host, pauseImage: ref, labels: RealLabel})
}

// firstIP is a range's first address: the kubernetes Service's ClusterIP.
func firstIP(cidr string) net.IP {
	_, n, _ := net.ParseCIDR(cidr)
	ip := n.IP.To4()
	return net.IPv4(ip[0], ip[1], ip[2], ip[3]+1)
}

// Close stops the real node (removing everything it made), then every
// process of the control plane.
func (c *Cluster) Close() {
	if c.storage != nil {
		c.storage.Close()
		c.storage = nil
	}
	if c.Node != nil {
		c.Node.Close()
		c.Node = nil
	}
	if c.dns != nil {
		c.dns.Close()
		c.dns = nil
	}
	if c.Registry != nil {
		c.Registry.Close()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i] != nil {
			c.procs[i].Stop()
		}
	}
}

// Component returns a running component by name: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler or kwok.
func (c *Cluster) Component(name string) *Process {
	for _, p := range c.procs {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// Logs returns the tail of every component's log, for failing tests.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	procs := c.procs
	if c.Node != nil {
		procs = append(append([]*Process{}, procs...), c.Node.procs...)
	}
	for _, p := range procs {
		if p != nil {
			fmt.Fprintf(&b, "--- %s\n%s\n", p.Name, p.Tail(n))
		}
	}
	return b.String()
}

func httpOK(url string, client *http.Client) func() error {
	if client == nil {
		client = insecureClient()
	}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %d", url, resp.StatusCode)
		}
		return nil
	}
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
