package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestMain lets a test run this binary as the liftoff CLI itself
// (LIFTOFF_TEST_MAIN=1), for runs a test must kill like a user would.
func TestMain(m *testing.M) {
	if os.Getenv("LIFTOFF_TEST_MAIN") == "1" {
		main()
		return
	}
	// Four tests at once unless -parallel says otherwise: the real-node
	// tests mostly wait (pods starting, an alert's 2 minutes, the
	// autoscaler's stabilization), so on 2 cores four at once took 13 min
	// in a cold run where two took 17. The one that bounds latency here
	// (TestE2EAutoscale) bounds it by the steady p99 it measured under the
	// same load.
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", "4")
	}
	os.Exit(m.Run())
}

// process is liftoff as its own process (this test binary, LIFTOFF_TEST_MAIN)
// in the project, with the cli's environment: for runs a test kills or
// interrupts like a user would.
func (c *cli) process(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--cwd", c.dir}, args...)...)
	cmd.Env = append(os.Environ(), "LIFTOFF_TEST_MAIN=1")
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// killTree SIGKILLs a process from process and every process it started,
// as a CI runner cancelling a job does (it kills the job's cgroup). Its
// process group is not enough: the pulumi CLI starts each plugin in a
// process group of its own, and a group kill left the Kubernetes provider
// plugin running. The tree is stopped first, then killed, so a process
// started meanwhile is not missed. It fails t when a process of the tree
// outlives the kill.
func killTree(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if cmd.Process == nil {
		return
	}
	stopped := map[int]bool{}
	for {
		more := false
		for _, pid := range append([]int{cmd.Process.Pid}, descendants(cmd.Process.Pid)...) {
			if !stopped[pid] {
				stopped[pid], more = true, true
				syscall.Kill(pid, syscall.SIGSTOP)
			}
		}
		if !more {
			break
		}
	}
	for pid := range stopped {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for pid := range stopped {
		for alive(pid) {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d (%s) outlived the kill of its tree", pid, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// procStat is a process's /proc/PID/stat after its command name (state,
// ppid, ...), nil when the process is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// alive reports whether pid runs (a zombie waiting for its parent does not).
func alive(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(p); len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], p)
		}
	}
	var out []int
	for queue := children[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, children[queue[0]]...)
	}
	return out
}

// withApp copies the app's module (go.mod, go.sum, app/) into the project,
// so a test can change the app without touching the repository.
func (c *cli) withApp() *cli {
	c.t.Helper()
	root := testenv.RepoRoot(c.t)
	for _, p := range []string{"go.mod", "go.sum", "app"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(root, p), c.dir).CombinedOutput(); err != nil {
			c.t.Fatalf("cp: %v %s", err, out)
		}
	}
	return c
}

// breakApp makes the project's app answer GET / with 500, its health and
// readiness untouched: a release that passes its probes and fails users.
func (c *cli) breakApp() {
	c.t.Helper()
	api := filepath.Join(c.dir, "app", "api", "api.go")
	b, err := os.ReadFile(api)
	const root = "func (s *Server) root(w http.ResponseWriter, r *http.Request) {\n"
	changed := strings.Replace(string(b), root, root+"\tif r.URL.Path == \"/\" {\n\t\twriteError(w, errStatus(http.StatusInternalServerError, \"a broken release\"))\n\t\treturn\n\t}\n", 1)
	if err != nil || changed == string(b) {
		c.t.Fatalf("break the app: %v (no root handler in %s?)", err, api)
	}
	if err := os.WriteFile(api, []byte(changed), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// changeApp makes a one-line change to the project's app (GET / reports an edition).
func (c *cli) changeApp() {
	c.t.Helper()
	api := filepath.Join(c.dir, "app", "api", "api.go")
	b, err := os.ReadFile(api)
	changed := strings.Replace(string(b), `"service": "shortener"`, `"service": "shortener", "edition": "2"`, 1)
	if err != nil || changed == string(b) {
		c.t.Fatalf("change the app: %v (no root info map in %s?)", err, api)
	}
	if err := os.WriteFile(api, []byte(changed), 0o644); err != nil {
		c.t.Fatal(err)
	}
}
