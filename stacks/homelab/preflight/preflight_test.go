package preflight

import (
	"github.com/liftoff-dev/liftoff/internal/hostscript"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/k3s"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

func nodes(env *testenv.SSHEnv, roles ...string) []Node {
	var out []Node
	for i, h := range env.Hosts {
		out = append(out, Node{Host: h.Addr, Port: h.Port, User: "root", Key: env.KeyPath, Role: roles[i]})
	}
	return out
}

func preflight(env *testenv.SSHEnv) *Preflight {
	return &Preflight{Trust: &remote.Trust{KnownHosts: env.KnownHosts}, Now: time.Now}
}

// failures maps host index to the names of its failed checks.
func failures(rep *Report) map[int][]string {
	out := map[int][]string{}
	for i, h := range rep.Hosts {
		for _, c := range h.Checks {
			if c.Status == "fail" {
				out[i] = append(out[i], c.Name)
			}
		}
	}
	return out
}

func TestPreflightPasses(t *testing.T) {
	env := testenv.StartSSHHosts(t, 3, testenv.SSHOptions{})
	rep := preflight(env).Run(context.Background(), nodes(env, "server", "agent", "agent"))
	if f := rep.Failed(); len(f) > 0 {
		t.Fatalf("failures on healthy hosts: %v", f)
	}
	for i, h := range rep.Hosts {
		var names []string
		for _, c := range h.Checks {
			names = append(names, c.Name)
		}
		want := []string{"ssh", "os", "arch", "systemd", "cgroups", "swap", "disk", "port-10250", "port-8472", "sudo", "clock", "hostname"}
		if i == 0 {
			want = append(want, "port-6443")
		}
		for _, w := range want {
			if !slices.Contains(names, w) {
				t.Errorf("host %d: no %s check in %v", i, w, names)
			}
		}
		if h.Hostname != fmt.Sprintf("node-%d", i) {
			t.Errorf("host %d hostname %q", i, h.Hostname)
		}
	}
	if keys := rep.HostKeys(); len(keys) != 3 || keys[env.Hosts[0].Addr+":22"] != env.Hosts[0].HostKey {
		t.Errorf("host keys %v", keys)
	}
}

// TestPreflightFailures: each host fails one way, on real hosts, and the one
// report names every failure with its host and fix.
func TestPreflightFailures(t *testing.T) {
	env := testenv.StartSSHHosts(t, 5, testenv.SSHOptions{Hostnames: []string{"a", "b", "twin", "twin", "e"}, NoSystemd: map[int]bool{1: true}})
	env.Hosts[0].Listen(t, 6443) // something else holds the API server's port
	// Host 4's clock is ten minutes behind and its CPU is one k3s does not ship for.
	shim := func(name, body string) {
		if err := os.WriteFile(env.Hosts[4].Path("/usr/local/bin/"+name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	shim("date", `if [ "$1" = +%s ]; then echo $(( $(/bin/date +%s) - 600 )); else exec /bin/date "$@"; fi`)
	shim("uname", `if [ "$1" = -m ]; then echo mips64; else exec /bin/uname "$@"; fi`)

	rep := preflight(env).Run(context.Background(), nodes(env, "server", "agent", "agent", "agent", "agent"))
	got := failures(rep)
	want := map[int][]string{0: {"port-6443"}, 1: {"systemd"}, 2: {"hostname"}, 3: {"hostname"}, 4: {"arch", "clock"}}
	for i := range want {
		slices.Sort(got[i])
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("host %d failed %v, want %v", i, got[i], want[i])
		}
	}
	lines := strings.Join(rep.Failed(), "\n")
	for _, s := range []string{env.Hosts[0].Addr + ":22: port-6443 (tcp 6443 in use): stop what listens on 6443",
		"systemd (", `node name "twin" is shared by`, "timedatectl set-ntp true", "mips64"} {
		if !strings.Contains(lines, s) {
			t.Errorf("report lacks %q:\n%s", s, lines)
		}
	}
	// Naming the twins apart in config resolves the clash.
	ns := nodes(env, "server", "agent", "agent", "agent", "agent")
	ns[3].Name = "twin-2"
	if f := failures(preflight(env).Run(context.Background(), ns)); slices.Contains(f[3], "hostname") {
		t.Errorf("named node still clashes: %v", f)
	}
	// Not enough disk anywhere.
	p := preflight(env)
	p.MinDiskMB = 1 << 30
	if f := failures(p.Run(context.Background(), ns[:1])); !slices.Contains(f[0], "disk") {
		t.Errorf("disk check passed with a 1 PiB requirement: %v", f)
	}
}

func TestHostKeys(t *testing.T) {
	env := testenv.StartSSHHosts(t, 1, testenv.SSHOptions{})
	n := nodes(env, "server")
	ctx := context.Background()
	known := filepath.Join(t.TempDir(), "known_hosts")

	// Unknown: refused, with the fingerprint and the way to trust it.
	rep := (&Preflight{Trust: &remote.Trust{KnownHosts: known}, Now: time.Now}).Run(ctx, n)
	ssh := rep.Hosts[0].Checks[0]
	if ssh.Status != "fail" || !strings.Contains(ssh.Detail, "unknown (SHA256:") || !strings.Contains(ssh.Fix, "--accept-new-host-keys") {
		t.Fatalf("unknown host: %+v", ssh)
	}
	if len(rep.Hosts[0].Checks) != 1 {
		t.Errorf("checks ran on an unverified host: %+v", rep.Hosts[0].Checks)
	}
	// Trust on first use: accepted and remembered.
	rep = (&Preflight{Trust: &remote.Trust{KnownHosts: known, AcceptNew: true}, Now: time.Now}).Run(ctx, n)
	if f := rep.Failed(); len(f) > 0 {
		t.Fatalf("accept-new: %v", f)
	}
	b, _ := os.ReadFile(known)
	if !strings.Contains(string(b), strings.Fields(env.Hosts[0].HostKey)[1]) {
		t.Errorf("known_hosts after TOFU: %s", b)
	}
	// A key pinned in state that differs: refused even though known_hosts agrees.
	other := testenv.StartSSHHosts(t, 1, testenv.SSHOptions{})
	pinned := map[string]string{env.Hosts[0].Addr + ":22": other.Hosts[0].HostKey}
	rep = (&Preflight{Trust: &remote.Trust{KnownHosts: known, Pinned: pinned}, Now: time.Now}).Run(ctx, n)
	if c := rep.Hosts[0].Checks[0]; c.Status != "fail" || !strings.Contains(c.Detail, "CHANGED") || !strings.Contains(c.Fix, "ssh-keygen -R") {
		t.Errorf("changed key: %+v", c)
	}
	var changed *remote.ChangedHostError
	_, err := remote.Dial(ctx, Host(n[0]), &remote.Trust{KnownHosts: known, Pinned: pinned}, 5*time.Second)
	if !errors.As(err, &changed) {
		t.Errorf("dial with a wrong pin: %v", err)
	}
}

// cluster drives install.sh, kubeconfig.sh and the uninstall command over
// SSH exactly as the Pulumi program's remote.Commands do (same command, same stdin).
type cluster struct {
	t     *testing.T
	env   *testenv.SSHEnv
	args  k3s.Args
	trust *remote.Trust
}

func (c *cluster) client(h *testenv.SSHHost) *remote.Client {
	c.t.Helper()
	cl, err := remote.Dial(context.Background(), remote.Host{Addr: h.Addr, Port: h.Port, User: "root", KeyPath: c.env.KeyPath}, c.trust, 5*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

func (c *cluster) host(n k3s.Node) *testenv.SSHHost {
	for _, h := range c.env.Hosts {
		if h.Addr == n.Host {
			return h
		}
	}
	c.t.Fatalf("no host %s", n.Host)
	return nil
}

// upload copies a local file to the host, as CopyToRemote does.
func (c *cluster) upload(h *testenv.SSHHost, local, remotePath string) {
	c.t.Helper()
	f, err := os.Open(local)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.client(h).Run(context.Background(), "cat > "+hostscript.Quote(remotePath), f); err != nil {
		c.t.Fatal(err)
	}
}

// up installs every node in order, returning each install's output.
func (c *cluster) up() []string {
	c.t.Helper()
	var outs []string
	for i, n := range c.args.Order() {
		h := c.host(n)
		if c.args.AirgapBinary != "" {
			c.upload(h, c.args.AirgapBinary, k3s.RemoteBinary)
			c.upload(h, c.args.AirgapImages, k3s.RemoteImages)
		}
		env := c.args.InstallEnv(i)
		env["K3S_TOKEN"] = "tok-" + c.t.Name()
		out, err := c.client(h).Run(context.Background(), hostscript.Shell("root", false), strings.NewReader(hostscript.Stdin("", env, hostscript.Script("install.sh"))))
		if err != nil {
			c.t.Fatalf("install on %s: %v\n%s", h.Addr, err, out)
		}
		outs = append(outs, strings.TrimSpace(string(out)))
	}
	return outs
}

func (c *cluster) read(h *testenv.SSHHost, path string) string {
	c.t.Helper()
	b, err := os.ReadFile(h.Path(path))
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func newCluster(t *testing.T, roles ...string) *cluster {
	env := testenv.StartSSHHosts(t, len(roles), testenv.SSHOptions{})
	dir := t.TempDir()
	bin, images := filepath.Join(dir, "k3s"), filepath.Join(dir, "images.tar")
	testenv.K3sStandin(t, bin, "v1.34.2+k3s1")
	if err := os.WriteFile(images, []byte("airgap images"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, env: env, trust: &remote.Trust{KnownHosts: env.KnownHosts},
		args: k3s.Args{Version: "v1.34.2+k3s1", TLSSANs: []string{"k3s.home.arpa"}, AirgapBinary: bin, AirgapImages: images,
			RegistryMirror: "localhost:30500", Context: "homelab", Token: pulumi.String(testenv.Generated)}}
	for i, h := range env.Hosts {
		c.args.Nodes = append(c.args.Nodes, k3s.Node{Host: h.Addr, Port: 22, User: "root", Role: roles[i], HostKey: h.HostKey})
	}
	if err := c.args.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInstallUpgradeUninstall: one server and two agents, air-gapped; a
// rerun changes nothing; a new binary upgrades in place; uninstall removes it.
func TestInstallUpgradeUninstall(t *testing.T) {
	c := newCluster(t, "server", "agent", "agent")
	outs := c.up()
	for i, o := range outs {
		if !strings.Contains(o, "changed: binary images config registries unit") {
			t.Errorf("install %d: %q", i, o)
		}
	}
	server, agent := c.env.Hosts[0], c.env.Hosts[1]
	cfg := c.read(server, "/etc/rancher/k3s/config.yaml")
	for _, s := range []string{"secrets-encryption: true", `token: "tok-`, `- "k3s.home.arpa"`, `- "` + server.Addr + `"`} {
		if !strings.Contains(cfg, s) {
			t.Errorf("server config lacks %q:\n%s", s, cfg)
		}
	}
	if strings.Contains(cfg, "server:") || strings.Contains(cfg, "cluster-init") {
		t.Errorf("single server joins or inits etcd:\n%s", cfg)
	}
	acfg := c.read(agent, "/etc/rancher/k3s/config.yaml")
	if !strings.Contains(acfg, `server: "https://`+server.Addr+`:6443"`) || strings.Contains(acfg, "secrets-encryption") {
		t.Errorf("agent config:\n%s", acfg)
	}
	if reg := c.read(agent, "/etc/rancher/k3s/registries.yaml"); !strings.Contains(reg, `"http://localhost:30500"`) {
		t.Errorf("registries.yaml:\n%s", reg)
	}
	if img := c.read(agent, "/var/lib/rancher/k3s/agent/images/k3s-airgap-images.tar"); img != "airgap images" {
		t.Errorf("air-gap images not placed: %q", img)
	}
	if unit := c.read(agent, "/etc/systemd/system/k3s-agent.service"); !strings.Contains(unit, "ExecStart=/usr/local/bin/k3s agent") {
		t.Errorf("agent unit:\n%s", unit)
	}
	if log := c.read(server, "/var/lib/rancher/standin/systemd/log"); !strings.Contains(log, "enable k3s") || !strings.Contains(log, "restart k3s") {
		t.Errorf("systemctl log:\n%s", log)
	}

	// The kubeconfig as the program fetches and rewrites it.
	out, err := c.client(server).Run(context.Background(), hostscript.Shell("root", false), strings.NewReader(hostscript.Stdin("", nil, hostscript.Script("kubeconfig.sh"))))
	if err != nil {
		t.Fatal(err)
	}
	kc, err := k3s.RewriteKubeconfig(string(out), c.args.ServerURL(), "homelab")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(kc, "server: https://"+server.Addr+":6443") || strings.Contains(kc, "127.0.0.1") || !strings.Contains(kc, "current-context: homelab") || strings.Contains(kc, "default") {
		t.Errorf("rewritten kubeconfig:\n%s", kc)
	}

	// A rerun with nothing changed restarts nothing.
	before := c.read(server, "/var/lib/rancher/standin/k3s.log")
	for i, o := range c.up() {
		if !strings.HasSuffix(o, "unchanged") {
			t.Errorf("rerun %d: %q", i, o)
		}
	}
	if after := c.read(server, "/var/lib/rancher/standin/k3s.log"); strings.Count(after, " server") != strings.Count(before, " server") {
		t.Errorf("rerun restarted the server:\n%s", after)
	}

	// Upgrade: a new binary is installed in place and restarted, servers first.
	testenv.K3sStandin(t, c.args.AirgapBinary, "v1.34.3+k3s1")
	c.args.Version = "v1.34.3+k3s1"
	for i, o := range c.up() {
		if !strings.Contains(o, "k3s v1.34.3+k3s1") || !strings.Contains(o, "changed: binary") || strings.Contains(o, "config") {
			t.Errorf("upgrade %d: %q", i, o)
		}
	}
	if log := c.read(server, "/var/lib/rancher/standin/k3s.log"); !strings.Contains(log, "v1.34.3+k3s1 server") {
		t.Errorf("server not restarted on the new version:\n%s", log)
	}

	// Uninstall, as the program's delete command runs it.
	for _, h := range c.env.Hosts {
		if out, err := c.client(h).Run(context.Background(), k3s.UninstallCommand("root", false), nil); err != nil || !strings.Contains(string(out), "k3s removed") {
			t.Fatalf("uninstall on %s: %v %s", h.Addr, err, out)
		}
		for _, p := range []string{"/usr/local/bin/k3s", "/etc/rancher/k3s", "/var/lib/rancher/k3s", "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service"} {
			if _, err := os.Stat(h.Path(p)); !os.IsNotExist(err) {
				t.Errorf("%s: %s left after uninstall", h.Addr, p)
			}
		}
	}
	if log := c.read(agent, "/var/lib/rancher/standin/systemd/log"); !strings.Contains(log, "stop k3s-agent") || !strings.Contains(log, "disable k3s-agent") {
		t.Errorf("agent service not stopped:\n%s", log)
	}
	// Uninstalling twice is fine (a destroy retried).
	if _, err := c.client(server).Run(context.Background(), k3s.UninstallCommand("root", false), nil); err != nil {
		t.Errorf("second uninstall: %v", err)
	}
}

// TestHA: three servers; the first initialises embedded etcd, the others join it.
func TestHA(t *testing.T) {
	c := newCluster(t, "server", "server", "server", "agent")
	c.up()
	first := c.read(c.env.Hosts[0], "/etc/rancher/k3s/config.yaml")
	if !strings.Contains(first, "cluster-init: true") || strings.Contains(first, "server:") {
		t.Errorf("first server:\n%s", first)
	}
	for _, h := range c.env.Hosts[1:3] {
		cfg := c.read(h, "/etc/rancher/k3s/config.yaml")
		if !strings.Contains(cfg, `server: "https://`+c.env.Hosts[0].Addr+`:6443"`) || strings.Contains(cfg, "cluster-init") || !strings.Contains(cfg, "secrets-encryption: true") {
			t.Errorf("joining server %s:\n%s", h.Addr, cfg)
		}
	}
	// Every node shares the token.
	tok := c.read(c.env.Hosts[0], "/var/lib/rancher/k3s/server/node-token")
	for _, h := range c.env.Hosts {
		if !strings.Contains(c.read(h, "/etc/rancher/k3s/config.yaml"), strings.TrimSpace(tok)) {
			t.Errorf("%s has another token", h.Addr)
		}
	}
}

// TestImportImage streams an image archive into every node's containerd
// through `k3s ctr images import -`.
func TestImportImage(t *testing.T) {
	c := newCluster(t, "server", "agent")
	c.up()
	archive := bytes.Repeat([]byte("layer"), 100000)
	err := ImportImage(context.Background(), c.trust, nodesOf(c), "", func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(archive)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.env.Hosts {
		if got := c.read(h, "/var/lib/rancher/standin/import-0.tar"); got != string(archive) {
			t.Errorf("%s imported %d bytes, want %d", h.Addr, len(got), len(archive))
		}
	}
	// A node that cannot import is named in the error.
	if err := os.Remove(c.env.Hosts[1].Path("/usr/local/bin/k3s")); err != nil {
		t.Fatal(err)
	}
	err = ImportImage(context.Background(), c.trust, nodesOf(c), "", func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(archive)), nil })
	if err == nil || !strings.Contains(err.Error(), c.env.Hosts[1].Addr) || strings.Contains(err.Error(), c.env.Hosts[0].Addr+":22:") {
		t.Errorf("err = %v", err)
	}
}

func nodesOf(c *cluster) []Node {
	var out []Node
	for _, n := range c.args.Nodes {
		out = append(out, Node{Host: n.Host, Port: n.Port, User: n.User, Key: c.env.KeyPath, Role: n.Role})
	}
	return out
}
