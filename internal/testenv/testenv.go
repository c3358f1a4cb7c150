// Package testenv starts real servers for tests: the pulumi CLI, PostgreSQL,
// Redis, an OCI registry, a Kubernetes control plane with kwok nodes, and
// sshd hosts. Each lives in a temp dir on free loopback ports and stops with
// the test. Only _test.go files import it.
package testenv

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot is the directory of liftoff's go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	r, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Root is RepoRoot for TestMain, where there is no test yet.
func Root() (string, error) {
	rootOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err == nil {
			root = filepath.Dir(strings.TrimSpace(string(out)))
		}
	})
	if root == "" || root == "." {
		return "", errors.New("testenv: cannot find the repository root (go env GOMOD)")
	}
	return root, nil
}

// Bin returns the path of a cached tool binary (.cache/bin/NAME), failing the
// test with the make target that builds it when it is missing.
func Bin(t testing.TB, name, target string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".cache", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s is missing: run `make %s` (make test does it for you)", p, target)
	}
	return p
}

// Pulumi returns the pulumi CLI built by `make tools`, or $LIFTOFF_PULUMI.
func Pulumi(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LIFTOFF_PULUMI"); p != "" {
		return p
	}
	return Bin(t, "pulumi", "tools")
}

// Command finds a system command, failing with the package that provides it.
func Command(t testing.TB, name, pkg string) string {
	t.Helper()
	if p, err := findCommand(name); err == nil {
		return p
	}
	t.Fatalf("testenv: %s not found: apt-get install %s (make test does it when root)", name, pkg)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
