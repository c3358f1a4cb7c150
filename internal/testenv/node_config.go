package testenv

import (
	"fmt"
	"net"
	"os"
)

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
