// Package internal_test enforces the import direction between liftoff's
// packages (Tailscale's deptest idea): a forbidden edge fails with its reason.
package internal_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
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
	{"internal", "components", "libraries reach Pulumi programs only through internal/target; the programs live in stacks/"},
	{"internal", "stacks", "libraries reach Pulumi programs only through internal/target; stacks.Targets is wired in by the CLI"},
	{"stacks", "internal/launch", "targets are called by the phases, never the other way round"},
	{"components", "internal/target", "components declare resources; choosing a target is the stacks' business"},
}

// external are module prefixes a package may not import directly.
var external = []rule{
	{"cmd/liftoff", "github.com/pulumi/", "commands call library actions: the engine (internal/engine) and the targets (stacks) hold Pulumi"},
	{"cmd/liftoff", "helm.sh/", "commands call library actions: releases are internal/rollout's"},
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
				for _, r := range external {
					if under(from, r.from) && strings.HasPrefix(imp, r.to) {
						t.Errorf("%s imports %s: %s", from, imp, r.why)
					}
				}
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

// perTarget are the identifiers that name one target: config.AWS and its
// kin, and config.Stack's per-target sections.
var perTarget = map[string]bool{"AWS": true, "Homelab": true, "Kubeconfig": true}

// TestNoTargetBranches: outside the target implementations (stacks/...),
// the config package that parses each target's section, and the aws cost
// model the aws target calls, no code names a target: a fourth target must
// not mean editing the phases or the commands. Branching on a target goes
// through internal/target's interface.
func TestNoTargetBranches(t *testing.T) {
	exempt := []string{"stacks", "internal/config", "internal/cost", "internal/testenv", "internal/demo", "app", "components", "tools"}
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			for _, e := range exempt {
				if under(rel, e) || strings.HasPrefix(d.Name(), ".") && rel != "." {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		cfgName := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"`+module+`/internal/config"` {
				cfgName = "config"
				if imp.Name != nil {
					cfgName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok || !perTarget[sel.Sel.Name] {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == cfgName && cfgName != "" {
				t.Errorf("%s names the target config.%s: go through internal/target (stacks.Targets)", rel, sel.Sel.Name)
			} else if sel.Sel.Name != "Kubeconfig" {
				// A Kubeconfig field is a path on many structs; AWS and Homelab are config.Stack's sections.
				t.Errorf("%s reads a target's config section .%s: that belongs in the target's implementation", rel, sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
