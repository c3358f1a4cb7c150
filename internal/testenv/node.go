package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	return n, nil
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

func (n *Node) path(p ...string) string { return filepath.Join(append([]string{n.dir}, p...)...) }

// inNode wraps argv to run inside the node's network namespace. nsenter, not
// `ip netns exec`, which remounts /sys and hides the cgroup mounts.
func (n *Node) inNode(argv ...string) []string {
	return append([]string{"nsenter", "--net=" + n.netnsPath(), "--"}, argv...)
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

// writeConfigs writes containerd's, the CNI's, kubelet's and kube-proxy's
// configuration and the node's credentials.
func (n *Node) writeConfigs(s nodeStart) error {
	for _, d := range []string{"cni", "certs.d/" + s.registry, "pod-logs", "kubelet", "kubelet-pki", "containerd"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"containerd.toml": fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  # The VM lacks CAP_SYS_RESOURCE: a negative oom_score_adj cannot be set.
  restrict_oom_score_adj = true
  # Pod network namespaces under the state dir, not the shared /var/run/netns.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %[8]q
`, n.path("containerd", "root"), n.path("containerd", "state"), n.path("containerd.sock"), n.path("containerd.ttrpc.sock"),
			s.pauseImage, cniBinDir, n.path("cni"), n.path("certs.d")),
		// The cluster's registry is plain HTTP on the host end of the veth.
		"certs.d/" + s.registry + "/hosts.toml": fmt.Sprintf("server = %[1]q\n\n[host.%[1]q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+s.registry),
		"cni/10-liftoff.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %[1]q,
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %[2]q, "ranges": [[{"subnet": %[3]q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.Name, n.path("cni-ipam"), n.PodCIDR),
		"resolv.conf": "nameserver " + n.DNS + "\n",
		"kubelet.yaml": fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[2]s
tlsPrivateKeyFile: %[3]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]s}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%[5]s
# The machine has cgroup v1 hierarchies: kubelet >= 1.35 refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[6]s
podLogsDir: %[7]s
resolvConf: %[8]s
clusterDNS: [%[9]s]
clusterDomain: cluster.local
failSwapOn: false
serializeImagePulls: false
# The disk is shared with everything else on the machine: never evict or collect for it.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
containerLogMaxSize: 10Mi
maxPods: 110
rotateCertificates: false
protectKernelDefaults: false
shutdownGracePeriod: 0s
`, n.IP, n.path("kubelet-serving.crt"), n.path("kubelet-serving.key"), s.pki.path("ca.crt"), n.path("containerd.sock"), n.cgroup,
			n.path("pod-logs"), n.path("resolv.conf"), n.DNS),
		"kube-proxy.yaml": fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: %[1]s
hostnameOverride: %[2]s
bindAddress: %[3]s
healthzBindAddress: %[3]s:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %[4]s
# Zero leaves the machine-wide conntrack table size and timeouts alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.path("kube-proxy.kubeconfig"), n.Name, n.IP, n.PodCIDR),
	}
	for name, content := range files {
		if err := os.WriteFile(n.path(name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	// Credentials: the kubelet as system:node:<name>, kube-proxy as
	// system:kube-proxy (both bound by the default RBAC), and the kubelet's
	// serving certificate for the API server's log and exec requests.
	caPEM, _ := os.ReadFile(s.pki.path("ca.crt"))
	for _, id := range []struct{ file, cn, org string }{
		{"kubelet.kubeconfig", "system:node:" + n.Name, "system:nodes"},
		{"kube-proxy.kubeconfig", "system:kube-proxy", ""},
	} {
		var orgs []string
		if id.org != "" {
			orgs = []string{id.org}
		}
		cert, key, err := s.pki.issue(id.cn, orgs, nil, nil, x509ClientAuth)
		if err != nil {
			return err
		}
		if err := writeKubeconfigFile(n.path(id.file), s.apiURL, "node", caPEM, cert, key); err != nil {
			return err
		}
	}
	cert, key, err := s.pki.issue(n.Name, nil, []string{n.Name}, []net.IP{net.ParseIP(n.IP)}, x509ServerAuth)
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("kubelet-serving.crt"), cert, 0o600); err != nil {
		return err
	}
	return os.WriteFile(n.path("kubelet-serving.key"), key, 0o600)
}

// cgroupMounts are the machine's cgroup hierarchies (v1 controllers and the
// hybrid unified one).
func cgroupMounts() []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 {
			continue
		}
		if typ := strings.Fields(post); len(typ) > 0 && (typ[0] == "cgroup" || typ[0] == "cgroup2") {
			out = append(out, f[4])
		}
	}
	return out
}

// makeCgroups creates the node's cgroup root in every hierarchy: kubelet
// checks that it exists, and puts every pod below it, so the node's pods
// never mix with another node's or the machine's.
func (n *Node) makeCgroups() error {
	for _, m := range cgroupMounts() {
		d := filepath.Join(m, n.cgroup)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", d, err)
		}
		if filepath.Base(m) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if b, err := os.ReadFile(filepath.Join(m, f)); err == nil {
					os.WriteFile(filepath.Join(d, f), b, 0o644)
				}
			}
		}
	}
	return nil
}

// Close stops the node and removes everything it made: processes (its own,
// and the containers and shims containerd started), mounts, cgroups, the
// network namespace with its veth, routes and iptables rules, files in
// default paths, and, when it is the last node on the machine, the shared
// default paths nodes created.
func (n *Node) Close() {
	unlock, err := machineLock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: node teardown:", err)
		return
	}
	defer unlock()
	n.closeLocked()
}

func (n *Node) closeLocked() {
	for i := len(n.procs) - 1; i >= 0; i-- {
		if n.procs[i] != nil {
			n.procs[i].Stop()
		}
	}
	if errs := n.cleanup(); len(errs) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: node %s teardown left something behind:\n  %s\n", n.Name, strings.Join(errs, "\n  "))
	}
	if n.slot != nil {
		if !n.slot.othersHeld() {
			if err := removeSharedPaths(); err != nil {
				fmt.Fprintln(os.Stderr, "testenv: shared paths:", err)
			}
		}
		n.slot.release()
		n.slot = nil
		if ents, _ := os.ReadDir(stateDir); len(ents) == 0 {
			os.Remove(stateDir)
		}
	}
}

// cleanup removes whatever of the node exists, in an order that lets each
// step succeed, and reports what it could not remove.
func (n *Node) cleanup() []string {
	var errs []string
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, what+": "+err.Error())
		}
	}
	// Containers, then the shims of this node's containerd, by PID.
	for _, pid := range cgroupPIDs(n.cgroup) {
		killPID(pid)
	}
	sock := filepath.Join(n.dir, "containerd.sock")
	for _, sh := range shimsOf(sock) {
		killPID(sh.pid)
		os.Remove(sh.socket)
	}
	note("mounts", unmountUnder(n.dir))
	note("cgroups", removeCgroups(n.cgroup))
	if _, err := os.Stat(n.netnsPath()); err == nil {
		note("network namespace", runCmd("ip", "netns", "del", n.NetNS))
	}
	if _, err := net.InterfaceByName(n.hostVeth); err == nil {
		note("veth", runCmd("ip", "link", "del", n.hostVeth))
	}
	// What kubelet and the CNI plugins write to default paths.
	if ents, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, e := range ents {
			p := filepath.Join("/var/log/containers", e.Name())
			if dst, err := os.Readlink(p); err == nil && strings.HasPrefix(dst, n.dir+"/") {
				os.Remove(p)
			}
		}
	}
	if ents, err := os.ReadDir("/var/lib/cni/results"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), n.Name+"-") {
				os.Remove(filepath.Join("/var/lib/cni/results", e.Name()))
			}
		}
	}
	if n.dir != "" {
		note("files", os.RemoveAll(n.dir))
	}
	return errs
}

// cgroupPIDs lists the processes anywhere below the node's cgroup root.
func cgroupPIDs(root string) []int {
	var pids []int
	for _, m := range cgroupMounts() {
		if filepath.Base(m) != "pids" && filepath.Base(m) != "memory" {
			continue
		}
		filepath.WalkDir(filepath.Join(m, root), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the node's cgroup root in every hierarchy, deepest
// first (a cgroup can only be removed once empty).
func removeCgroups(root string) error {
	var errs []error
	for _, m := range cgroupMounts() {
		top := filepath.Join(m, root)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			var err error
			for range 50 { // a killed process leaves its cgroup a moment later
				if err = os.Remove(dirs[i]); err == nil || errors.Is(err, os.ErrNotExist) {
					err = nil
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type shim struct {
	pid    int
	socket string
}

// shimsOf finds the containerd-shim-runc-v2 processes of the containerd
// listening on sock (they run in their own process groups and outlive it)
// and the sockets they listen on.
func shimsOf(sock string) []shim {
	var out []shim
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), "containerd-shim") {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		flags := map[string]string{}
		for i := 0; i+1 < len(args); i++ {
			if strings.HasPrefix(args[i], "-") {
				flags[strings.TrimLeft(args[i], "-")] = args[i+1]
			}
		}
		if flags["address"] != sock {
			continue
		}
		out = append(out, shim{pid: pid, socket: shimSocket(sock, flags["namespace"], flags["id"])})
	}
	return out
}

func killPID(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Signal(killSignal)
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	if dir == "" {
		return nil
	}
	var errs []error
	for range 3 { // a mount can appear under another: repeat until none is left
		mounts := mountsUnder(dir)
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for i := len(mounts) - 1; i >= 0; i-- {
			if err := unmount(mounts[i]); err != nil {
				errs = append(errs, fmt.Errorf("umount %s: %w", mounts[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// runCmd runs a command and returns its output with the error.
func runCmd(argv ...string) error {
	path, err := findCommand(argv[0])
	if err != nil {
		return fmt.Errorf("%s not found", argv[0])
	}
	out, err := exec.Command(path, argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Component returns one of the node's processes by name: containerd,
// kubelet or kube-proxy (a test freezes kubelet with SIGSTOP to hold a
// rollout in place).
func (n *Node) Component(name string) *Process {
	for _, p := range n.procs {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}
