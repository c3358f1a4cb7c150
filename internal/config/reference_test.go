package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	. "github.com/liftoff-dev/liftoff/internal/config"
)

var update = flag.Bool("update", false, "rewrite docs/config.md's config reference")

const (
	refStart = "<!-- config-reference:start -->\n"
	refEnd   = "<!-- config-reference:end -->\n"
)

// TestREADMEReference keeps docs/config.md's config reference in step with Keys.
func TestREADMEReference(t *testing.T) {
	path := "../../docs/config.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, refStart), strings.Index(s, refEnd)
	if i < 0 || j < i {
		t.Fatalf("docs/config.md lacks the %q ... %q markers", refStart, refEnd)
	}
	want := s[:i+len(refStart)] + Reference() + s[j:]
	if want == s {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Error("docs/config.md's config reference is out of date: go test ./internal/config -run TestREADMEReference -update")
}
