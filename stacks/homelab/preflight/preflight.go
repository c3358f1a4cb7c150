// Package preflight is what liftoff does for the homelab target to the user's own machines outside
// the Pulumi program: the preflight that checks every host in parallel
// before anything changes, and image import over SSH into k3s's containerd.
package preflight

import (
	"github.com/liftoff-dev/liftoff/internal/hostscript"

	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-dev/liftoff/internal/remote"
)

// MaxClockSkew is how far a host's clock may be from this machine's; beyond
// it TLS certificates and etcd leases misbehave.
const MaxClockSkew = 30 * time.Second

// Check is one check on one host.
type Check struct {
	Name   string `json:"check"`
	Status string `json:"status"` // ok, warn, fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// HostReport is every check of one host.
type HostReport struct {
	Host     string  `json:"host"`
	Role     string  `json:"role"`
	Hostname string  `json:"hostname,omitempty"`
	Checks   []Check `json:"checks"`
	// HostKey is the key the host presented and was trusted with.
	HostKey string `json:"-"`
	clock   time.Duration
}

// Failed reports whether any check failed.
func (h *HostReport) Failed() bool {
	for _, c := range h.Checks {
		if c.Status == "fail" {
			return true
		}
	}
	return false
}

// Report is the preflight of every host.
type Report struct {
	Hosts []*HostReport `json:"hosts"`
}

// Failed lists "host: check (detail): fix" for every failure.
func (r *Report) Failed() []string {
	var out []string
	for _, h := range r.Hosts {
		for _, c := range h.Checks {
			if c.Status == "fail" {
				line := fmt.Sprintf("%s: %s (%s)", h.Host, c.Name, c.Detail)
				if c.Fix != "" {
					line += ": " + c.Fix
				}
				out = append(out, line)
			}
		}
	}
	return out
}

// HostKeys are the trusted keys by host:port, for pinning in stack state.
func (r *Report) HostKeys() map[string]string {
	out := map[string]string{}
	for _, h := range r.Hosts {
		if h.HostKey != "" {
			out[h.Host] = h.HostKey
		}
	}
	return out
}

// Preflight runs the checks.
type Preflight struct {
	Trust *remote.Trust
	// MinDiskMB is the free space each host needs under /var/lib.
	MinDiskMB int
	// SudoPassword, when set, is fed to sudo.
	SudoPassword string
	Timeout      time.Duration
	Now          func() time.Time
}

// Node is one host of a homelab cluster, as liftoff:nodes lists it.
type Node struct {
	Name string `json:"name"` // Kubernetes node name; empty uses the host's hostname
	Host string `json:"host"`
	User string `json:"user"`
	Port int    `json:"port"`
	Key  string `json:"key"`
	Role string `json:"role"`
}

// Host is a node as an SSH endpoint.
func Host(n Node) remote.Host {
	return remote.Host{Addr: n.Host, Port: n.Port, User: n.User, KeyPath: n.Key}
}

// Run checks every node in parallel and returns one report; it changes nothing.
func (p *Preflight) Run(ctx context.Context, nodes []Node) *Report {
	rep := &Report{Hosts: make([]*HostReport, len(nodes))}
	servers := 0
	for _, n := range nodes {
		if n.Role == "server" {
			servers++
		}
	}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Hosts[i] = p.host(ctx, n, servers > 1)
		}()
	}
	wg.Wait()
	p.crossChecks(nodes, rep)
	return rep
}

func (p *Preflight) host(ctx context.Context, n Node, ha bool) *HostReport {
	h := Host(n)
	r := &HostReport{Host: h.Address(), Role: n.Role}
	c, err := remote.Dial(ctx, h, p.Trust, p.timeout())
	if err != nil {
		r.Checks = append(r.Checks, Check{Name: "ssh", Status: "fail", Detail: err.Error(), Fix: sshFix(err, h)})
		return r
	}
	defer c.Close()
	r.HostKey = p.Trust.Accepted()[h.Address()]
	r.Checks = append(r.Checks, Check{Name: "ssh", Status: "ok", Detail: h.User + "@" + h.Address()})
	env := map[string]string{"ROLE": n.Role, "MIN_DISK_MB": strconv.Itoa(p.minDisk())}
	if ha {
		env["HA"] = "1"
	}
	sent := p.Now()
	out, err := c.Run(ctx, hostscript.Shell(n.User, p.SudoPassword != ""), strings.NewReader(hostscript.Stdin(hostscript.SudoLine(n.User, p.SudoPassword), env, hostscript.Script("preflight.sh"))))
	var exit *remote.ExitError
	switch {
	case errors.As(err, &exit) && n.User != "root" && strings.Contains(exit.Stderr, "sudo"):
		// The checks run as root through sudo: sudo refusing is the sudo check failing.
		r.Checks = append(r.Checks, Check{Name: "sudo", Status: "fail", Detail: strings.TrimSpace(exit.Stderr),
			Fix: fmt.Sprintf("allow passwordless sudo for %s, or set it: liftoff config set --secret sudoPassword", n.User)})
		return r
	case err != nil:
		r.Checks = append(r.Checks, Check{Name: "preflight", Status: "fail", Detail: err.Error(), Fix: "run the checks by hand: see docs/targets.md, homelab preflight"})
		return r
	}
	rtt := p.Now().Sub(sent)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		status, rest, _ := strings.Cut(sc.Text(), " ")
		name, rest, _ := strings.Cut(rest, " ")
		switch status {
		case "ok", "warn", "fail":
			detail, fix, _ := strings.Cut(rest, " | ")
			r.Checks = append(r.Checks, Check{Name: name, Status: status, Detail: detail, Fix: fix})
		case "fact":
			switch name {
			case "hostname":
				r.Hostname = rest
			case "time":
				if secs, err := strconv.ParseInt(rest, 10, 64); err == nil {
					// The host read its clock roughly half-way through the round trip.
					r.clock = time.Unix(secs, 0).Sub(sent.Add(rtt / 2))
				}
			}
		}
	}
	return r
}

// crossChecks compare hosts: node names must be unique, clocks close to ours.
func (p *Preflight) crossChecks(nodes []Node, rep *Report) {
	nodeNames := make([]string, len(rep.Hosts)) // the Kubernetes node name: configured, or the hostname
	hostsByName := map[string][]string{}
	for i, h := range rep.Hosts {
		if h.Hostname == "" {
			continue // unreachable: its own failure says so
		}
		nodeNames[i] = cmp.Or(nodes[i].Name, h.Hostname)
		hostsByName[nodeNames[i]] = append(hostsByName[nodeNames[i]], h.Host)
		if skew := h.clock; math.Abs(skew.Seconds()) > MaxClockSkew.Seconds() {
			h.Checks = append(h.Checks, Check{Name: "clock", Status: "fail", Detail: fmt.Sprintf("%s off from this machine", skew.Round(time.Second)),
				Fix: "enable time sync on the host: timedatectl set-ntp true"})
		} else {
			h.Checks = append(h.Checks, Check{Name: "clock", Status: "ok", Detail: fmt.Sprintf("within %s", MaxClockSkew)})
		}
	}
	for i, h := range rep.Hosts {
		name := nodeNames[i]
		if name == "" {
			continue
		}
		if others := hostsByName[name]; len(others) > 1 {
			sort.Strings(others)
			h.Checks = append(h.Checks, Check{Name: "hostname", Status: "fail", Detail: fmt.Sprintf("node name %q is shared by %s", name, strings.Join(others, ", ")),
				Fix: "give each host its own hostname (hostnamectl set-hostname), or set a unique name on the node in liftoff:nodes"})
		} else {
			h.Checks = append(h.Checks, Check{Name: "hostname", Status: "ok", Detail: name})
		}
	}
}

func sshFix(err error, h remote.Host) string {
	var unknown *remote.UnknownHostError
	var changed *remote.ChangedHostError
	switch {
	case errors.As(err, &unknown):
		return fmt.Sprintf("verify the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then: ssh-keyscan -p %d %s >> ~/.ssh/known_hosts, or rerun with --accept-new-host-keys", h.Port, h.Addr)
	case errors.As(err, &changed):
		return "if the host was reinstalled, remove its old key: ssh-keygen -R " + h.Addr + "; otherwise do not connect"
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Sprintf("authorise your key for %s on the host (ssh-copy-id -p %d %s@%s)", h.User, h.Port, h.User, h.Addr)
	}
	return "check that the host is up and sshd listens on port " + strconv.Itoa(h.Port)
}

func (p *Preflight) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 15 * time.Second
}

func (p *Preflight) minDisk() int {
	if p.MinDiskMB > 0 {
		return p.MinDiskMB
	}
	return 2048
}

// ImportImage streams an image archive (docker/OCI tarball) into k3s's
// containerd on every node in parallel: the registry-less delivery.
func ImportImage(ctx context.Context, trust *remote.Trust, nodes []Node, sudoPassword string, archive func() (io.ReadCloser, error)) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = importOne(ctx, trust, n, sudoPassword, archive)
		}()
	}
	wg.Wait()
	var failed []string
	for i, err := range errs {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", Host(nodes[i]).Address(), err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("import image: %s", strings.Join(failed, "; "))
	}
	return nil
}

func importOne(ctx context.Context, trust *remote.Trust, n Node, sudoPassword string, archive func() (io.ReadCloser, error)) error {
	c, err := remote.Dial(ctx, Host(n), trust, 15*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	rc, err := archive()
	if err != nil {
		return err
	}
	defer rc.Close()
	cmd := "k3s ctr -n k8s.io images import -"
	var in io.Reader = rc
	switch {
	case n.User == "root":
	case sudoPassword != "":
		cmd, in = "sudo -S -p '' "+cmd, io.MultiReader(strings.NewReader(sudoPassword+"\n"), rc)
	default:
		cmd = "sudo -n " + cmd
	}
	_, err = c.Run(ctx, cmd, in)
	return err
}
