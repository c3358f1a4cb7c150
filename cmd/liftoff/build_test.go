package main

import (
	"context"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

func TestBuildCommand(t *testing.T) {
	c := newCLI(t)
	c.dir = testenv.RepoRoot(t) // build the shortener in this repository
	reg := testenv.StartRegistry(t)
	r := c.mustRun("build", "--repo", reg.Host+"/shortener", "--platform", "linux/amd64")
	ref := strings.TrimSpace(r.out)
	if !strings.HasPrefix(ref, reg.Host+"/shortener@sha256:") || strings.Count(r.out, "\n") != 1 {
		t.Fatalf("stdout must be the reference alone: %q", r.out)
	}
	for _, want := range []string{"==> build", "compiling ./app/cmd/shortener for linux/amd64", "==> push", "pushed"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.err)
		}
	}
	r = c.mustRun("build", "--repo", reg.Host+"/shortener", "--platform", "linux/amd64", "--json")
	evs := validEvents(t, r.out)
	last := evs[len(evs)-1]
	if last.Type != "result" || last.Fields()["reference"] != ref || last.Fields()["blobs_uploaded"] != float64(0) {
		t.Errorf("rebuild of an unchanged tree: %+v", last.Fields())
	}
	if r := c.run("build", "--package", "./internal/config", "--platform", "linux/amd64"); r.code != 7 || !strings.Contains(r.err, "not a main package") {
		t.Errorf("library package: %+v", r)
	}
	if r := c.runCtx(context.Background(), "", "build", "--repo", "127.0.0.1:1/app", "--platform", "linux/amd64"); r.code != 8 || !strings.Contains(r.err, "cannot reach") {
		t.Errorf("unreachable registry: %+v", r)
	}
}
