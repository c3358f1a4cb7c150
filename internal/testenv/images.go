package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ImagesDir is where `make testcluster` leaves the images tests need, as OCI
// layouts built by liftoff's own builder (`liftoff build --oci-layout`).
func ImagesDir(repo string) string { return filepath.Join(repo, ".cache", "images") }

// pauseLayout is the real node's sandbox image: internal/testenv/pause,
// a static Go program that sleeps and reaps its children.
func pauseLayout(repo string) (string, error) {
	dir := filepath.Join(ImagesDir(repo), "pause")
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return "", fmt.Errorf("the pause image %s is missing: run `make testcluster` (make test does it for you)", dir)
	}
	return dir, nil
}

// pushLayout pushes the index of an OCI layout to repo (plain HTTP) and
// returns repo@digest.
func pushLayout(dir, repo string) (string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(repo+"@"+d.String(), name.Insecure)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return ref.String(), nil
}

// PushImage pushes an image `make testcluster` built (a directory under
// ImagesDir) to the cluster's registry and returns the reference the real
// node pulls: registry/testenv/name@sha256:...
func (c *Cluster) PushImage(t testing.TB, image string) string {
	t.Helper()
	if c.Registry == nil {
		t.Fatal("testenv: PushImage needs a cluster with a real node")
	}
	dir := filepath.Join(ImagesDir(RepoRoot(t)), image)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		t.Fatalf("testenv: image %s is missing: run `make testcluster` (make test does it for you)", dir)
	}
	ref, err := pushLayout(dir, c.Registry.Host+"/testenv/"+image)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
