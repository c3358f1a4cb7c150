package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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
		// The kernel removes the pair with its namespace's end, but not
		// always before the check above: gone by then is removed.
		if err := runCmd("ip", "link", "del", n.hostVeth); err != nil {
			if _, still := net.InterfaceByName(n.hostVeth); still == nil {
				note("veth", err)
			}
		}
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
