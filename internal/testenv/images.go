package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
// returns repo@digest (repo:tag@digest when repo names a tag, which is
// pushed too).
func pushLayout(dir, repo string) (string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", dir, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(repo, name.Insecure)
	if err != nil {
		return "", err
	}
	if _, tagged := ref.(name.Tag); !tagged {
		ref = ref.Context().Digest(d.String())
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	if _, tagged := ref.(name.Tag); tagged {
		return repo + "@" + d.String(), nil
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

// standIns are the images `make testcluster` builds in place of the official
// images of the in-cluster registry, PostgreSQL and Valkey, by the stack
// setting that selects each.
var standIns = map[string]string{"registryImage": "registry", "postgresImage": "postgres", "valkeyImage": "valkey"}

// StandIns pushes the stand-ins to the cluster's registry and returns the
// stack settings that select them (registryImage=..., postgresImage=...,
// valkeyImage=...): how a user runs liftoff's in-cluster components from a
// mirror, as an air-gapped cluster must.
func (c *Cluster) StandIns(t testing.TB) map[string]string {
	t.Helper()
	set, err := c.PushStandIns(RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// PushStandIns is StandIns for programs that are not tests (make demo).
func (c *Cluster) PushStandIns(repo string) (map[string]string, error) {
	return c.push(repo, standIns)
}

// monitoringStandIns are the monitoring stack's images `make testcluster`
// builds, by the stack setting that selects each, tagged with the version
// of the program they hold (the operator configures Prometheus by its
// tag): the operator and its config reloader built from their module,
// Prometheus 3.16.0 and node_exporter 1.9.1 from their modules, Debian
// bookworm's Alertmanager, and liftoff's small OpenTelemetry Collector
// distribution (tools/otelcol).
var monitoringStandIns = map[string]string{
	"operatorImage": "prometheus-operator:v0.85.0", "configReloaderImage": "prometheus-config-reloader:v0.85.0",
	"prometheusImage": "prometheus:v3.16.0", "alertmanagerImage": "alertmanager:v0.25.0",
	"nodeExporterImage": "node-exporter:v1.9.1", "collectorImage": "otelcol:0.165.0",
}

// MonitoringOff are the parts of the monitoring stack the local cluster
// cannot run (liftoff:observabilityOff): Grafana, Loki and Tempo are AGPL
// modules; no kube-state-metrics module is served; the node log agent
// ships to Loki (and needs the contrib file and Kubernetes components, not
// in the test distribution); the operator's webhook certificate job is not
// built here.
const MonitoringOff = "grafana,loki,tempo,logAgent,kubeStateMetrics,admissionWebhooks"

// PushMonitoring pushes the monitoring stack's stand-ins to the cluster's
// registry and returns the stack settings that select them.
func (c *Cluster) PushMonitoring(repo string) (map[string]string, error) {
	return c.push(repo, monitoringStandIns)
}

func (c *Cluster) push(repo string, images map[string]string) (map[string]string, error) {
	if c.Registry == nil {
		return nil, fmt.Errorf("testenv: stand-in images need a cluster with a real node")
	}
	set := map[string]string{}
	for key, image := range images {
		dir := filepath.Join(ImagesDir(repo), strings.Split(image, ":")[0])
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			return nil, fmt.Errorf("testenv: image %s is missing: run `make testcluster` (make test does it for you)", dir)
		}
		ref, err := pushLayout(dir, c.Registry.Host+"/mirror/"+image)
		if err != nil {
			return nil, err
		}
		set[key] = ref
	}
	return set, nil
}
