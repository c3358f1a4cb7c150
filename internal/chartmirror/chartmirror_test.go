package chartmirror

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
)

// upstream is a Helm repository folder holding the named charts
// (name, version pairs), each a real packaged chart, indexed as helm does.
func upstream(t *testing.T, charts ...string) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < len(charts); i += 2 {
		c := &chart.Chart{
			Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: charts[i], Version: charts[i+1]},
			Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")}},
		}
		if _, err := chartutil.Save(c, dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeIndex(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serve serves dir over HTTP, counting requests.
func serve(t *testing.T, dir string) (string, *atomic.Int64) {
	var n atomic.Int64
	fs := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		fs.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestMirrorFromTwoRepositories(t *testing.T) {
	a, hitsA := serve(t, upstream(t, "crds", "23.0.0", "crds", "28.0.1", "stack", "77.14.0"))
	b, _ := serve(t, upstream(t, "collector", "0.97.1"))
	charts := []Chart{{"crds", "23.0.0", a}, {"stack", "77.14.0", a}, {"collector", "0.97.1", b + "/"}}
	dir := filepath.Join(t.TempDir(), "mirror")
	var seen []string
	res, err := Mirror(context.Background(), dir, charts, Options{Done: func(r Result) { seen = append(seen, r.Chart+":"+r.Status) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, " "); got != "crds:fetched stack:fetched collector:fetched" {
		t.Errorf("progress: %s", got)
	}
	if hitsA.Load() != 3 {
		t.Errorf("the first repository was asked %d times, want 3 (its index once, two archives)", hitsA.Load())
	}
	for _, r := range res {
		if r.Bytes == 0 || len(r.Digest) != 64 {
			t.Errorf("%+v", r)
		}
	}
	// The folder is a repository by itself: relative URLs, only what was
	// asked for (not crds 28.0.1).
	idx, err := repo.LoadIndexFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Entries) != 3 || len(idx.Entries["crds"]) != 1 {
		t.Fatalf("index: %v", idx.Entries)
	}
	if u := idx.Entries["stack"][0].URLs[0]; u != "stack-77.14.0.tgz" {
		t.Errorf("URL %q, want relative", u)
	}

	// A second run reads no source.
	hitsA.Store(0)
	res, err = Mirror(context.Background(), dir, charts, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != "present" {
			t.Errorf("second run: %+v", r)
		}
	}
	if hitsA.Load() != 0 {
		t.Errorf("second run asked the repository %d times", hitsA.Load())
	}

	// A changed file in the folder is fetched again.
	if err := os.WriteFile(filepath.Join(dir, "stack-77.14.0.tgz"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = Mirror(context.Background(), dir, charts[:2], Options{})
	if err != nil || res[0].Status != "present" || res[1].Status != "fetched" {
		t.Fatalf("after a change: %+v %v", res, err)
	}

	// The mirror itself is a source (--from), as a URL and as a folder.
	for _, from := range []string{dir, mustServe(t, dir)} {
		out := t.TempDir()
		if _, err := Mirror(context.Background(), out, charts, Options{From: from}); err != nil {
			t.Fatalf("from %s: %v", from, err)
		}
	}
}

func mustServe(t *testing.T, dir string) string {
	u, _ := serve(t, dir)
	return u
}

func TestMirrorFailures(t *testing.T) {
	src := upstream(t, "crds", "23.0.0", "stack", "77.14.0")
	good, _ := serve(t, src)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	// tampered serves the right index but another archive for stack.
	other := upstream(t, "stack", "77.14.0", "evil", "1.0.0")
	tampered := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "stack-77.14.0.tgz") {
			http.ServeFile(w, r, filepath.Join(other, "evil-1.0.0.tgz"))
			return
		}
		http.FileServer(http.Dir(src)).ServeHTTP(w, r)
	}))
	t.Cleanup(tampered.Close)

	for _, c := range []struct {
		name        string
		charts      []Chart
		opts        Options
		want        []string // statuses
		errHas      string
		unreachable bool
	}{
		{"missing version", []Chart{{"crds", "23.0.0", good}, {"stack", "1.0.0", good}}, Options{}, []string{"fetched", "failed"}, "stack 1.0.0: not in " + good, false},
		{"missing allowed", []Chart{{"crds", "23.0.0", good}, {"loki", "6.5.2", good}}, Options{AllowMissing: true}, []string{"fetched", "missing"}, "", false},
		{"unreachable", []Chart{{"crds", "23.0.0", down.URL}, {"stack", "77.14.0", good}}, Options{AllowMissing: true}, []string{"failed", "fetched"}, "cannot reach " + down.URL + "/index.yaml", true},
		{"no folder", []Chart{{"crds", "23.0.0", "x"}}, Options{From: filepath.Join(t.TempDir(), "nope")}, []string{"failed"}, "is not a Helm repository folder", true},
		{"tampered", []Chart{{"stack", "77.14.0", tampered.URL}}, Options{}, []string{"failed"}, "digest mismatch", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := Mirror(context.Background(), dir, c.charts, c.opts)
			for i, r := range res {
				if r.Status != c.want[i] {
					t.Errorf("%s: %s, want %s (%s)", r.Chart, r.Status, c.want[i], r.Error)
				}
			}
			var me *Error
			if c.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if !errors.As(err, &me) || !strings.Contains(err.Error(), c.errHas) || me.Unreachable != c.unreachable {
				t.Fatalf("error %v (unreachable %v), want %q (unreachable %v)", err, me != nil && me.Unreachable, c.errHas, c.unreachable)
			}
			// Nothing but whole, checked charts and the index is left.
			files, _ := filepath.Glob(filepath.Join(dir, "*"))
			for _, f := range files {
				b := filepath.Base(f)
				if b != "index.yaml" && b != "crds-23.0.0.tgz" && b != "stack-77.14.0.tgz" {
					t.Errorf("left in the mirror: %s", b)
				}
				if b == "stack-77.14.0.tgz" && c.name == "tampered" {
					t.Errorf("the tampered archive was kept")
				}
			}
		})
	}
}
