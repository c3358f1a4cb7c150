// Package internal_test enforces the import direction between liftoff's
// packages (Tailscale's deptest idea): a forbidden edge fails with its reason.
package internal_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/liftoff-dev/liftoff"

type rule struct {
	from, to string // package path prefixes below the module
	why      string
}

var forbidden = []rule{
	{"app", "cmd", "app is a separate product: it imports nothing of liftoff"},
	{"app", "internal", "app is a separate product: it imports nothing of liftoff"},
	{"app", "stacks", "app is a separate product: it imports nothing of liftoff"},
	{"app", "components", "app is a separate product: it imports nothing of liftoff"},
	{"components", "internal/rollout", "components declare resources; rollouts happen in liftoff's phases"},
	{"components", "cmd", "components never depend on the CLI"},
	{"components", "stacks", "stacks compose components, not the other way round"},
	{"stacks", "cmd", "stacks never depend on the CLI"},
	{"stacks", "internal/rollout", "programs run during preview: no imperative rollouts inside them"},
	{"stacks", "internal/image", "programs run during preview: no pushes inside them"},
	{"internal", "cmd", "libraries never depend on the CLI"},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		from := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, imp := range p.Imports {
			if imp == "testing" && from != "internal/testenv" {
				t.Errorf("%s imports testing: production code never does", p.ImportPath)
			}
			// The demo driver is a test harness for people: it starts the same local cluster.
			if imp == module+"/internal/testenv" && from != "internal/demo" {
				t.Errorf("%s imports internal/testenv: only _test.go files (and the demo driver) may", p.ImportPath)
			}
			to, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			for _, r := range forbidden {
				if under(from, r.from) && under(to, r.to) {
					t.Errorf("%s imports %s: %s", from, to, r.why)
				}
			}
		}
	}
}

func under(p, prefix string) bool { return p == prefix || strings.HasPrefix(p, prefix+"/") }
