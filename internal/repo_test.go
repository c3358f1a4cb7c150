package internal_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tracked lists the repository's tracked files (paths from its root) and the root.
func tracked(t *testing.T) (string, []string) {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v (the repository hygiene checks need the git checkout)", err)
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return root, files
}

// TestNoBinaryOrLargeFileTracked keeps build outputs out of the repository:
// a clone must stay small, and nothing in it may be a compiled artifact.
func TestNoBinaryOrLargeFileTracked(t *testing.T) {
	root, files := tracked(t)
	for _, f := range files {
		fi, err := os.Lstat(filepath.Join(root, f))
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or a symlink
		}
		if fi.Size() > 1<<20 {
			t.Errorf("%s is tracked and %d bytes: no tracked file may exceed 1 MiB (build outputs belong in .gitignore)", f, fi.Size())
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			t.Errorf("%s is tracked and binary (a NUL byte in its first 8000): commit sources, not build outputs", f)
		}
	}
}

// outside matches a path that leaves the repository for its sibling
// folder: a clone has nothing beside it. ../shared/charts is the one
// exception, an offline source of the pinned upstream charts that the
// test cluster uses only when their public repositories cannot be reached.
var outside = regexp.MustCompile(`\.\./shared(/[A-Za-z0-9_.-]*)?`)

// TestNothingReachesOutsideTheRepository: no test, build step or document
// depends on a path a fresh clone does not have.
func TestNothingReachesOutsideTheRepository(t *testing.T) {
	root, files := tracked(t)
	for _, f := range files {
		if f == "internal/repo_test.go" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		for _, m := range outside.FindAllStringSubmatch(string(b), -1) {
			// A bare mention ("no ../shared beside it") depends on nothing.
			if m[1] != "" && m[1] != "/charts" {
				t.Errorf("%s reaches %s, outside the repository: a fresh clone has no ../shared", f, m[0])
			}
		}
	}
}
