package testenv

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// ChartsDir is a Helm repository folder (packaged charts and index.yaml)
// holding the upstream charts at liftoff's pins: LIFTOFF_CHARTS, else what
// `make testcluster` fetched into .cache/charts, else the offline copy of
// the upstream repositories beside the checkout (../shared/charts). It is
// "" when there is none.
func ChartsDir(repo string) string {
	dirs := []string{os.Getenv("LIFTOFF_CHARTS"), filepath.Join(repo, ".cache", "charts"), filepath.Join(repo, "..", "shared", "charts")}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "index.yaml")); err == nil {
			return d
		}
	}
	return ""
}

// ChartMirror serves ChartsDir over HTTP on loopback, as a mirror of the
// upstream chart repositories (liftoff:chartMirror), for as long as the
// test runs. Without a copy of the charts the test is skipped, saying
// where they were looked for: the chart repositories cannot be reached
// from this machine.
func ChartMirror(t testing.TB) string {
	t.Helper()
	dir := ChartsDir(RepoRoot(t))
	if dir == "" {
		t.Skipf("no copy of the pinned upstream charts (LIFTOFF_CHARTS, .cache/charts from make testcluster, or ../shared/charts): the monitoring stack's charts cannot be reached")
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}
