package testenv

import (
	"crypto/ed25519"
	"crypto/rand"
	"embed"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

//go:embed k3s/k3s k3s/systemctl
var standins embed.FS

// SSHHost is a test host: a network namespace on a private /30 with its own
// hostname and its own /usr/local/bin, /etc/rancher, /var/lib/rancher,
// /etc/systemd/system and /root (bind mounts in a private mount namespace),
// running Debian's sshd. What one host installs the others do not see.
type SSHHost struct {
	Name    string // network namespace
	Addr    string
	Port    int
	Root    string // the host's private directories live under here
	HostKey string // authorized_keys format
	sshd    *Process
}

// Path is where a path inside the host lives on this machine (for the
// private directories only).
func (h *SSHHost) Path(p string) string {
	for _, d := range privateDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return filepath.Join(h.Root, strings.TrimPrefix(d, "/"), strings.TrimPrefix(p, d))
		}
	}
	panic("testenv: " + p + " is not private to the host")
}

// Listen opens a TCP listener inside the host's network namespace (a port in use).
func (h *SSHHost) Listen(t testing.TB, port int) {
	t.Helper()
	done := make(chan error, 1)
	var ln net.Listener
	go func() {
		runtime.LockOSThread() // the thread leaves the root namespace; it is discarded, not unlocked
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- err
			return
		}
		defer self.Close()
		ns, err := os.Open("/var/run/netns/" + h.Name)
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		ln, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("listen in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { ln.Close() })
}

// SSHEnv is a set of test hosts and the client side: a key authorised on
// every host and a known_hosts file that lists them all.
type SSHEnv struct {
	Hosts      []*SSHHost
	KeyPath    string
	KnownHosts string
}

var privateDirs = []string{"/usr/local/bin", "/etc/rancher", "/var/lib/rancher", "/etc/systemd/system", "/root"}

var hostSeq atomic.Int32

// SSHOptions shape the hosts.
type SSHOptions struct {
	// Hostnames per host; default node-<i>.
	Hostnames []string
	// K3sVersion is what the stand-in k3s reports (AirgapBinary writes it).
	K3sVersion string
	// NoSystemd leaves out the systemctl stand-in on these host indexes.
	NoSystemd map[int]bool
}

// StartSSHHosts starts n hosts. It needs root, iproute2, util-linux's
// unshare and openssh-server; it skips the test without root.
func StartSSHHosts(t testing.TB, n int, o SSHOptions) *SSHEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SSH test hosts need root (network namespaces)")
	}
	for _, bin := range []string{"ip", "unshare", "/usr/sbin/sshd", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: make deps installs iproute2 and openssh-server", bin)
		}
	}
	for _, d := range append(privateDirs, "/run/sshd") {
		if err := os.MkdirAll(d, 0o755); err != nil { // mount points; empty on the machine itself
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	env := &SSHEnv{KeyPath: filepath.Join(dir, "id_ed25519"), KnownHosts: filepath.Join(dir, "known_hosts")}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(env.KeyPath, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		t.Fatal(err)
	}
	subnet := (os.Getpid()*7 + int(hostSeq.Add(1))*13) % 250
	var known []string
	for i := 0; i < n; i++ {
		seq := hostSeq.Add(1)
		h := &SSHHost{Name: fmt.Sprintf("lt%d-%d", os.Getpid()%100000, seq), Port: 22, Root: filepath.Join(dir, fmt.Sprintf("host%d", i))}
		outer := fmt.Sprintf("10.213.%d.%d", subnet, 4*i+1)
		h.Addr = fmt.Sprintf("10.213.%d.%d", subnet, 4*i+2)
		veth := fmt.Sprintf("lv%d-%d", os.Getpid()%100000, seq)
		must(t, "ip", "netns", "add", h.Name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.Name).Run() })
		must(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
		t.Cleanup(func() { exec.Command("ip", "link", "del", veth).Run() })
		must(t, "ip", "addr", "add", outer+"/30", "dev", veth)
		must(t, "ip", "link", "set", veth, "up")
		must(t, "ip", "netns", "exec", h.Name, "ip", "addr", "add", h.Addr+"/30", "dev", "eth0")
		must(t, "ip", "netns", "exec", h.Name, "ip", "link", "set", "eth0", "up")
		must(t, "ip", "netns", "exec", h.Name, "ip", "link", "set", "lo", "up")

		var binds []string
		for _, d := range privateDirs {
			src := filepath.Join(h.Root, strings.TrimPrefix(d, "/"))
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			binds = append(binds, fmt.Sprintf("mount --bind %s %s", src, d))
		}
		if !o.NoSystemd[i] {
			writeStandin(t, "k3s/systemctl", h.Path("/usr/local/bin/systemctl"), nil)
		}
		keyFile := filepath.Join(h.Root, "ssh_host_ed25519_key")
		must(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keyFile)
		hk, err := os.ReadFile(keyFile + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(hk))
		h.HostKey = f[0] + " " + f[1]
		known = append(known, fmt.Sprintf("%s %s", h.Addr, h.HostKey))
		cfg := filepath.Join(h.Root, "sshd_config")
		if err := os.WriteFile(cfg, []byte(strings.Join([]string{
			"Port 22", "ListenAddress " + h.Addr, "HostKey " + keyFile, "AuthorizedKeysFile " + authorized,
			"PermitRootLogin prohibit-password", "PasswordAuthentication no", "StrictModes no", "UsePAM no",
			"PidFile none", "Subsystem sftp internal-sftp", "LogLevel VERBOSE", "",
		}, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		hostname := fmt.Sprintf("node-%d", i)
		if i < len(o.Hostnames) {
			hostname = o.Hostnames[i]
		}
		script := fmt.Sprintf("set -e; hostname %s; %s; exec /usr/sbin/sshd -D -e -f %s", hostname, strings.Join(binds, "; "), cfg)
		h.sshd = newProcess(t, h.Name+"-sshd", []string{"ip", "netns", "exec", h.Name, "unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", script},
			nil, nil, func() error {
				c, err := net.DialTimeout("tcp", net.JoinHostPort(h.Addr, "22"), 200*time.Millisecond)
				if err == nil {
					c.Close()
				}
				return err
			})
		env.Hosts = append(env.Hosts, h)
	}
	if err := os.WriteFile(env.KnownHosts, []byte(strings.Join(known, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return env
}

// K3sStandin writes the stand-in k3s binary reporting version into path
// (the air-gap binary a test uploads).
func K3sStandin(t testing.TB, path, version string) {
	t.Helper()
	writeStandin(t, "k3s/k3s", path, func(s string) string { return strings.ReplaceAll(s, "@VERSION@", version) })
}

func writeStandin(t testing.TB, name, path string, edit func(string) string) {
	t.Helper()
	b, err := standins.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if edit != nil {
		s = edit(s)
	}
	if err := os.WriteFile(path, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
}

func must(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}
