package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// BenchmarkImage is `make bench-image`: a cold build and push (empty Go build
// cache and layer cache) of the shortener for linux/amd64 and linux/arm64,
// then an incremental rebuild and push after a one-line change. It prints
// times, bytes pushed and how many image layers changed. b.N is ignored.
func BenchmarkImage(b *testing.B) {
	root := testenv.RepoRoot(b)
	dir := b.TempDir()
	for _, p := range []string{"go.mod", "go.sum", "app"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(root, p), dir).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
	}
	commit := func(msg string) Source {
		for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", msg}} {
			cmd := exec.Command("git", args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=b", "GIT_AUTHOR_EMAIL=b@b", "GIT_COMMITTER_NAME=b", "GIT_COMMITTER_EMAIL=b@b")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		return ReadSource(context.Background(), dir, func(string) string { return "" })
	}
	b.Setenv("GOCACHE", b.TempDir()) // cold: nothing compiled yet
	cache := b.TempDir()
	reg := testenv.StartRegistry(b)
	repo := reg.Host + "/shortener"
	ship := func(src Source) (*Result, *Published, time.Duration, time.Duration) {
		start := time.Now()
		res, err := Build(context.Background(), BuildOptions{Dir: dir, Package: "./app/cmd/shortener", CacheDir: cache, Source: src})
		if err != nil {
			b.Fatal(err)
		}
		built := time.Since(start)
		pub, err := Publish(context.Background(), res, PublishOptions{Repository: repo, Tags: Tags(src, res.Digest)})
		if err != nil {
			b.Fatal(err)
		}
		return res, pub, built, time.Since(start)
	}
	b.ResetTimer()
	cold, coldPub, coldBuild, coldTotal := ship(commit("cold"))

	file := filepath.Join(dir, "app", "api", "api.go")
	src, _ := os.ReadFile(file)
	changed := bytes.Replace(src, []byte(`"service": "shortener"`), []byte(`"service": "shortener", "edition": "2"`), 1)
	if bytes.Equal(src, changed) {
		b.Fatal("the one-line change did not apply")
	}
	os.WriteFile(file, changed, 0o644)
	inc, incPub, incBuild, incTotal := ship(commit("one-line change"))
	b.StopTimer()

	layersChanged := 0
	for i, p := range inc.Platforms {
		before := layerSet(b, cold.Platforms[i].Image)
		after, _ := p.Image.Layers()
		for _, l := range after {
			if d, _ := l.Digest(); !before[d] {
				layersChanged++
			}
		}
	}
	fmt.Printf("\nbench-image: shortener for linux/amd64 + linux/arm64, in-process registry on loopback\n")
	fmt.Printf("  %-40s build %-8s build+push %-8s pushed %d blobs, %.1f MiB\n", "cold (empty Go and layer caches)",
		coldBuild.Round(100*time.Millisecond), coldTotal.Round(100*time.Millisecond), coldPub.BlobsUploaded, float64(coldPub.BytesUploaded)/(1<<20))
	fmt.Printf("  %-40s build %-8s build+push %-8s pushed %d blobs, %.1f MiB; image layers changed: %d (1 per platform)\n", "incremental (one-line app change)",
		incBuild.Round(100*time.Millisecond), incTotal.Round(100*time.Millisecond), incPub.BlobsUploaded, float64(incPub.BytesUploaded)/(1<<20), layersChanged)
	fmt.Printf("  target: incremental build+push < 10s with one layer pushed per platform\n")
	b.ReportMetric(coldTotal.Seconds(), "cold-s")
	b.ReportMetric(incTotal.Seconds(), "incremental-s")
	b.ReportMetric(float64(incPub.BytesUploaded)/(1<<20), "incremental-MiB")
	b.ReportMetric(float64(layersChanged), "layers-changed")
}

func layerSet(b *testing.B, img v1.Image) map[v1.Hash]bool {
	ls, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	out := map[v1.Hash]bool{}
	for _, l := range ls {
		d, _ := l.Digest()
		out[d] = true
	}
	return out
}
