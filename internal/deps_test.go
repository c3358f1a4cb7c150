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
	"strconv"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/stacks"
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

// genericNames are target names that are also ordinary words of the trade:
// "kubeconfig" is the file every cluster is reached with, whatever its target.
var genericNames = map[string]bool{"kubeconfig": true}

// TestNoTargetBranches: outside each target's own package (stacks/<name>)
// and the one line that registers it (stacks/stacks.go), no code names a
// target, reads one of its settings or its cloud's SDK: a fourth target
// must not mean editing the config, the phases or the commands. Branching
// on a target goes through internal/target's interface, and its settings
// through the spec it registers with internal/config.
func TestNoTargetBranches(t *testing.T) {
	var names, targetPkgs []string
	keys := map[string]string{} // a target's own key -> the target
	for _, tg := range stacks.Targets.All() {
		names = append(names, tg.Name())
		targetPkgs = append(targetPkgs, "stacks/"+tg.Name())
		for _, k := range tg.Config().Keys {
			keys[k.Name] = tg.Name()
		}
	}
	targetPkgs = append(targetPkgs, "stacks/preview")
	exempt := append([]string{"internal/testenv", "internal/demo", "app", "components", "tools"}, targetPkgs...)
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
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			for _, tp := range targetPkgs {
				if under(p, module+"/"+tp) && rel != "stacks/stacks.go" {
					t.Errorf("%s imports the target package %s: only stacks/stacks.go registers targets; everything else goes through internal/target", rel, p)
				}
			}
			// ECR's credentials are registry auth, which any stack's build
			// may need, as ko's keychains do; the rest of a cloud is its target's.
			if strings.HasPrefix(p, "github.com/aws/") && !under(rel, "internal/image") {
				t.Errorf("%s imports %s: a cloud's SDK belongs in its target's package (stacks/aws)", rel, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			for _, name := range names {
				if v == name && !genericNames[name] {
					t.Errorf("%s names the target %q: go through internal/target (its registry and interface)", rel, v)
				}
			}
			for k, owner := range keys {
				if v == k || strings.Contains(v, k+" ") || strings.HasSuffix(v, k) {
					t.Errorf("%s reads %s, a setting of the %s target: that belongs in the target's package", rel, k, owner)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
