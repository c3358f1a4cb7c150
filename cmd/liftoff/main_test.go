package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestMain lets a test run this binary as the liftoff CLI itself
// (LIFTOFF_TEST_MAIN=1), for runs a test must kill like a user would.
func TestMain(m *testing.M) {
	if os.Getenv("LIFTOFF_TEST_MAIN") == "1" {
		main()
		return
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
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killGroup takes its plugins with it
	return cmd
}

// killGroup SIGKILLs a process from process and everything it started (the
// engine's resource plugins), as a CI runner cancelling a job does: killing
// the process alone left the Kubernetes provider plugin running.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
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
