package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Node is a real Kubernetes node on this machine: containerd, kubelet and
// kube-proxy run inside a network namespace made for it, linked to the host
// by a veth pair (kubelet refuses a loopback node IP). Pods get addresses on
// a bridge inside that namespace, and the host routes the pod and Service
// ranges into it: tests, the API server and a person at this machine reach
// pods and ClusterIPs directly, while the host's ip_forward stays off, so
// nothing a pod sends leaves the machine.
type Node struct {
	Name string
	// NetNS is the node's network namespace, a name under /var/run/netns.
	NetNS string
	// HostIP is the host end of the veth, where the node reaches the API
	// server, the cluster's registry and its DNS server.
	HostIP string
	// IP is the node's own address, the namespace end of the veth.
	IP string
	// PodCIDR and ServiceCIDR are routed from the host into the namespace.
	PodCIDR, ServiceCIDR string
	// DNS is the nameserver the node's pods use.
	DNS string

	dir      string
	slot     *slot
	hostVeth string
	cgroup   string // the node's cgroup root, e.g. /liftoff-node-3
	procs    []*Process
	undo     []func() error
}

// nodeBinaries are what a real node runs: built by `make testcluster`
// (kubelet, kube-proxy) or installed from Debian's packages by it.
var nodeCommands = []struct{ name, pkg string }{
	{"containerd", "containerd"}, {"containerd-shim-runc-v2", "containerd"}, {"ctr", "containerd"}, {"runc", "runc"},
	{"nsenter", "util-linux"}, {"ip", "iproute2"}, {"iptables", "iptables"}, {"conntrack", "conntrack"},
}

// cniPlugins are the CNI plugins the node's network uses (Debian's containernetworking-plugins).
var cniPlugins = []string{"bridge", "host-local", "loopback", "portmap"}

const cniBinDir = "/usr/lib/cni"

// checkNodePrereqs names the first missing piece and how to get it.
func checkNodePrereqs(bin string) error {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (network namespaces, cgroups, mounts): run the tests as root, as make test does in CI")
	}
	for _, b := range []string{"kubelet", "kube-proxy"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return fmt.Errorf("%s is missing: run `make testcluster` (make test does it for you)", filepath.Join(bin, b))
		}
	}
	for _, c := range nodeCommands {
		if _, err := findCommand(c.name); err != nil {
			return fmt.Errorf("%s not found: apt-get install %s (make testcluster does it when root)", c.name, c.pkg)
		}
	}
	for _, p := range cniPlugins {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			return fmt.Errorf("CNI plugin %s not found in %s: apt-get install containernetworking-plugins (make testcluster does it when root)", p, cniBinDir)
		}
	}
	return nil
}

// newNodeNetwork takes an address slot and builds the node's network
// namespace, veth pair and host routes, and its cgroup root; the control
// plane then listens on HostIP. Close undoes all of it.
func newNodeNetwork(bin string) (_ *Node, err error) {
	if err := checkNodePrereqs(bin); err != nil {
		return nil, err
	}
	unlock, err := machineLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	s, stale, err := acquireSlot()
	if err != nil {
		return nil, err
	}
	n := nodeInSlot(s.n)
	n.slot = s
	// Holders that died left their nodes behind: take them away first.
	for k, rec := range stale {
		dead := nodeInSlot(k)
		dead.dir = rec.Dir
		if errs := dead.cleanup(); len(errs) > 0 {
			fmt.Fprintf(os.Stderr, "testenv: leftovers of node %s (pid %d) remain:\n  %s\n", dead.Name, rec.PID, strings.Join(errs, "\n  "))
		} else if k != s.n {
			os.Remove(slotPath(k))
		}
	}
	n.cleanup() // anything of this slot's names that is still there
	if err := restoreSavedSysctls(); err != nil {
		s.release()
		return nil, err
	}
	if err := noteSharedPaths(!s.othersHeld()); err != nil {
		s.release()
		return nil, err
	}
	defer func() {
		if err != nil {
			n.closeLocked()
		}
	}()
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return nil, err
	}
	if err := s.record(n.dir); err != nil {
		return nil, err
	}
	nodeVeth := fmt.Sprintf("lfn%d", s.n)
	steps := [][]string{
		{"ip", "netns", "add", n.NetNS},
		{"ip", "link", "add", n.hostVeth, "type", "veth", "peer", "name", nodeVeth, "netns", n.NetNS},
		{"ip", "addr", "add", n.HostIP + "/30", "dev", n.hostVeth},
		{"ip", "link", "set", n.hostVeth, "up"},
		{"ip", "-n", n.NetNS, "link", "set", "lo", "up"},
		{"ip", "-n", n.NetNS, "link", "set", nodeVeth, "name", "eth0"},
		{"ip", "-n", n.NetNS, "addr", "add", n.IP + "/30", "dev", "eth0"},
		{"ip", "-n", n.NetNS, "link", "set", "eth0", "up"},
		{"ip", "-n", n.NetNS, "route", "add", "default", "via", n.HostIP},
		// A ClusterIP kube-proxy has not programmed yet is refused at once
		// instead of bouncing between the host and the node until its TTL ends.
		{"ip", "-n", n.NetNS, "route", "add", "unreachable", n.ServiceCIDR},
		{"ip", "route", "add", n.PodCIDR, "via", n.IP, "dev", n.hostVeth},
		{"ip", "route", "add", n.ServiceCIDR, "via", n.IP, "dev", n.hostVeth},
		// Inside the namespace only: the node routes between its pods and the host.
		{"nsenter", "--net=" + n.netnsPath(), "--", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"nsenter", "--net=" + n.netnsPath(), "--", "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"},
	}
	for _, st := range steps {
		if err := runCmd(st...); err != nil {
			return nil, fmt.Errorf("node network: %w", err)
		}
	}
	if err := n.makeCgroups(); err != nil {
		return nil, err
	}
	if err := n.makeMountNS(); err != nil {
		return nil, err
	}
	return n, nil
}

// makeMountNS gives the node a mount namespace of its own, kept by a file
// in its directory, in which / is a shared mount as on a machine systemd
// booted: containerd and kubelet mount container filesystems and pod
// volumes there, out of the machine's sight, and a pod may mount the
// host's / with HostToContainer propagation (node exporter does), which
// containerd allows only from a shared or slave mount. The machine's own
// mounts (this VM's / is private) are not touched. The node's directory is
// bound onto itself and made private first, as `ip netns` does for its
// folder: a namespace file can only be kept on a private mount.
func (n *Node) makeMountNS() error {
	f := n.mountNSPath()
	steps := [][]string{
		{"mount", "--bind", n.dir, n.dir},
		{"mount", "--make-private", n.dir},
		{"touch", f},
		{"unshare", "--mount=" + f, "--propagation", "private", "true"},
		{"nsenter", "--mount=" + f, "--", "mount", "--make-rshared", "/"},
	}
	for _, st := range steps {
		if err := runCmd(st...); err != nil {
			return fmt.Errorf("node mount namespace: %w", err)
		}
	}
	return nil
}

// nodeInSlot names a node's namespace, links, addresses, directory and
// cgroup after its slot k: 10.201.k.0/30 links it to the host, pods get
// 10.202.k.0/24 and Services 10.203.k.0/24.
func nodeInSlot(k int) *Node {
	n := &Node{
		Name: fmt.Sprintf("liftoff-node-%d", k), NetNS: fmt.Sprintf("liftoff-node-%d", k),
		HostIP: fmt.Sprintf("10.201.%d.1", k), IP: fmt.Sprintf("10.201.%d.2", k),
		PodCIDR: fmt.Sprintf("10.202.%d.0/24", k), ServiceCIDR: fmt.Sprintf("10.203.%d.0/24", k),
		// A short fixed path: unix socket paths are limited to 108 bytes.
		dir: fmt.Sprintf("/tmp/liftoff-node-%d", k), hostVeth: fmt.Sprintf("lfh%d", k), cgroup: fmt.Sprintf("/liftoff-node-%d", k),
	}
	n.DNS = n.HostIP
	return n
}

func (n *Node) netnsPath() string { return "/var/run/netns/" + n.NetNS }

func (n *Node) mountNSPath() string { return n.path("mountns") }

func (n *Node) path(p ...string) string { return filepath.Join(append([]string{n.dir}, p...)...) }

// inNode wraps argv to run inside the node's network and mount namespaces.
// nsenter, not `ip netns exec`, which remounts /sys and hides the cgroup
// mounts.
func (n *Node) inNode(argv ...string) []string {
	return append([]string{"nsenter", "--net=" + n.netnsPath(), "--mount=" + n.mountNSPath(), "--"}, argv...)
}

// nodeStart is what the node needs from its control plane.
type nodeStart struct {
	bin        string
	apiURL     string
	pki        *pki
	registry   string // host:port on HostIP, plain HTTP
	pauseImage string // a reference in registry
	labels     map[string]string
}

// start runs containerd, kubelet and kube-proxy and waits until the node is
// Ready; the machine-wide sysctls kubelet changes are put back after.
func (n *Node) start(ctx context.Context, c *Cluster, s nodeStart) error {
	if err := n.writeConfigs(s); err != nil {
		return err
	}
	log := func(name string) string { return n.path(name + ".log") }
	containerd, _ := findCommand("containerd")
	p, err := startProcess(log("containerd"), "containerd", n.inNode(containerd, "--config", n.path("containerd.toml")), nil, nil, func() error {
		conn, err := net.DialTimeout("unix", n.path("containerd.sock"), time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	if n.procs = append(n.procs, p); err != nil {
		return err
	}

	unlock, err := machineLock()
	if err != nil {
		return err
	}
	saved, err := saveSysctls()
	if err != nil {
		unlock()
		return err
	}
	p, err = startProcessWithin(log("kubelet"), "kubelet", n.inNode(filepath.Join(s.bin, "kubelet"),
		"--config", n.path("kubelet.yaml"), "--kubeconfig", n.path("kubelet.kubeconfig"),
		"--hostname-override", n.Name, "--node-ip", n.IP, "--root-dir", n.path("kubelet"),
		"--cert-dir", n.path("kubelet-pki"), "--node-labels", labelList(s.labels), "--v", "1"),
		nil, nil, func() error { return n.ready(ctx, c) }, 90*time.Second)
	restoreErr := writeSysctls(saved)
	if restoreErr == nil {
		restoreErr = os.Remove(sysctlSaved)
	}
	unlock()
	if n.procs = append(n.procs, p); err != nil {
		return err
	}
	if restoreErr != nil {
		return restoreErr
	}

	p, err = startProcess(log("kube-proxy"), "kube-proxy", n.inNode(filepath.Join(s.bin, "kube-proxy"),
		"--config", n.path("kube-proxy.yaml"), "--v", "1"), nil, nil, httpOK("http://"+n.IP+":10256/healthz", nil))
	if n.procs = append(n.procs, p); err != nil {
		return err
	}
	return nil
}

// ready reports whether kubelet registered the node and reports it Ready.
func (n *Node) ready(ctx context.Context, c *Cluster) error {
	node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s: %s", cond.Reason, cond.Message)
		}
	}
	return errNotReady
}

func labelList(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}
