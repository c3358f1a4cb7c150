package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/stacks"
)

// TestMirrorCharts runs `liftoff mirror charts` against the offline copy of
// the upstream chart repositories, served over HTTP as a repository, and
// checks bad input is refused before DIR is made.
func TestMirrorCharts(t *testing.T) {
	c := newCLI(t)
	dir := filepath.Join(t.TempDir(), "mirror")
	for _, bad := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mirror", "charts"}, 2, "takes 1 argument"},
		{[]string{"mirror", "charts", dir, "--chart", "grafana"}, 2, `--chart "grafana": liftoff installs no chart of that name`},
		{[]string{"mirror", "charts", dir, "--from", "oci://registry.example.com/charts"}, 2, "not a Helm repository URL or folder"},
		{[]string{"mirror", "charts", dir, "--from", t.TempDir()}, 2, "no index.yaml there"},
		// Nothing listens there: the source cannot be reached (exit 8).
		{[]string{"mirror", "charts", dir, "--from", "http://127.0.0.1:1", "--chart", "tempo"}, 8, "cannot reach http://127.0.0.1:1/index.yaml"},
	} {
		r := c.run(bad.args...)
		if r.code != bad.code || !strings.Contains(r.err, bad.msg) {
			t.Errorf("liftoff %s: exit %d, want %d with %q\n%s", strings.Join(bad.args, " "), r.code, bad.code, bad.msg, r.err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.yaml")); err == nil {
		t.Errorf("a refused run left an index in %s", dir)
	}

	src := testenv.ChartsDir(testenv.RepoRoot(t))
	if src == "" {
		t.Skip("no copy of the pinned upstream charts (LIFTOFF_CHARTS, .cache/charts, ../shared/charts): the real charts are mirrored by make testcluster only")
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(src)))
	defer srv.Close()
	r := c.mustRun("mirror", "charts", dir, "--from", srv.URL, "--allow-missing", "--json")
	validEvents(t, r.out) // docs/events.schema.json
	var res mirrorResult
	for _, line := range strings.Split(strings.TrimSpace(r.out), "\n") {
		var ev struct {
			Type string       `json:"type"`
			Data mirrorResult `json:"data"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err == nil && ev.Type == "result" {
			res = ev.Data
		}
	}
	if len(res.Charts) != len(stacks.Charts()) {
		t.Fatalf("result: %+v\n%s", res, r.out)
	}
	for _, ch := range res.Charts {
		// The two the monitoring stack needs are in every copy.
		if (ch.Chart == "kube-prometheus-stack" || ch.Chart == "prometheus-operator-crds") && ch.Status != "fetched" {
			t.Errorf("%s: %s %s", ch.Chart, ch.Status, ch.Error)
		}
	}
	again := c.mustRun("mirror", "charts", dir, "--chart", "kube-prometheus-stack", "--chart", "prometheus-operator-crds")
	if strings.Count(again.err, "already there") != 2 || strings.Contains(again.err, "fetched") {
		t.Errorf("a second run with no network must find the charts there:\n%s", again.err)
	}
}
