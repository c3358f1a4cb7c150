package observability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// chartsDir is a Helm repository folder holding the pinned charts
// (testenv.ChartsDir: LIFTOFF_CHARTS, .cache/charts, ../shared/charts).
func chartsDir(t *testing.T) string {
	dir := testenv.ChartsDir(testenv.RepoRoot(t))
	if dir == "" {
		t.Skipf("no copy of the upstream chart repositories (LIFTOFF_CHARTS, .cache/charts from make testcluster, or ../shared/charts): the pinned charts cannot be rendered offline")
	}
	return dir
}

// TestPinnedChartsRender renders every pinned chart liftoff installs with
// liftoff's own values, as `helm install --dry-run` does (dependencies,
// values schema, templates), and checks every value liftoff sets names a
// value the chart has: a misspelt or removed value fails here, not in a
// user's up. Loki's chart is not in the offline copy (its source is
// AGPL-licensed): its values are checked by the component test only.
func TestPinnedChartsRender(t *testing.T) {
	dir := chartsDir(t)
	a := Args{Namespace: DefaultNamespace, Retention: 14 * 24 * time.Hour, StorageClass: "gp3"}
	kps, err := a.prometheusValues()
	if err != nil {
		t.Fatal(err)
	}
	am, err := AlertmanagerConfig(notify.Dest{Kind: notify.Slack, URL: "https://hooks.slack.com/services/T/B/x"})
	if err != nil {
		t.Fatal(err)
	}
	setPath(kps, []string{"alertmanager", "config"}, am)
	// What the local cluster runs: every image from its registry (tags are
	// versions), the parts it has no image for left out.
	const dg = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	mirrored := Args{Namespace: DefaultNamespace, Retention: 24 * time.Hour, Off: Parts, Images: map[string]string{
		"operator": "10.0.0.1:5000/mirror/prometheus-operator" + dg, "configReloader": "10.0.0.1:5000/mirror/prometheus-config-reloader" + dg,
		"prometheus": "10.0.0.1:5000/mirror/prometheus:v3.16.0" + dg, "alertmanager": "10.0.0.1:5000/mirror/alertmanager:v0.25.0" + dg,
		"nodeExporter": "10.0.0.1:5000/mirror/node-exporter:v1.9.1" + dg, "collector": "10.0.0.1:5000/mirror/otelcol:0.165.0" + dg}}
	mirroredKPS, err := mirrored.prometheusValues()
	if err != nil {
		t.Fatal(err)
	}
	mirroredKPS["nodeExporter"] = map[string]any{"enabled": true} // its image, rendered
	// Every part on, every image from the mirror: none of the chart's own.
	everyImage := Args{Namespace: DefaultNamespace, Retention: 24 * time.Hour, GrafanaPassword: pulumi.String("x"), Images: map[string]string{}}
	for part := range imageValues {
		everyImage.Images[part] = "10.0.0.1:5000/mirror/" + strings.ToLower(part) + ":v1" + dg
	}
	everyImage.Images["tempo"] = "10.0.0.1:5000/mirror/tempo:v1" + dg
	if err := everyImage.validate(); err != nil {
		t.Fatal(err)
	}
	everyKPS, err := everyImage.prometheusValues()
	if err != nil {
		t.Fatal(err)
	}
	values := func(file string, set func(map[string]any)) map[string]any {
		v, err := loadValues(file)
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(v)
		}
		return v
	}
	for _, c := range []struct {
		release string
		chart   Chart
		values  map[string]any
		// want are kinds the rendering must hold.
		want []string
		// free are sections whose keys are the user's own names.
		free []string
		// images, when set, are exactly the images the rendering runs.
		images []string
	}{
		{"kps-mirrored", PrometheusStack, mirroredKPS, []string{"Prometheus", "Alertmanager", "ServiceMonitor", "PrometheusRule", "Deployment", "DaemonSet"}, nil, []string{
			"10.0.0.1:5000/mirror/alertmanager:v0.25.0" + dg, "10.0.0.1:5000/mirror/node-exporter:v1.9.1" + dg,
			"10.0.0.1:5000/mirror/prometheus-config-reloader:v0.85.0" + dg, "10.0.0.1:5000/mirror/prometheus-operator:v0.85.0" + dg,
			"10.0.0.1:5000/mirror/prometheus:v3.16.0" + dg}},
		{"kps-every-image", PrometheusStack, everyKPS, nil, nil, mirroredOnly},
		{"tempo-mirrored", Tempo, values("tempo.yaml", everyImage.tempoOverrides), nil, nil, []string{"10.0.0.1:5000/mirror/tempo:v1" + dg}},
		{"crds", OperatorCRDs, map[string]any{}, nil, nil, nil},
		{"kps", PrometheusStack, kps, []string{"Prometheus", "Alertmanager", "ServiceMonitor", "PrometheusRule", "Deployment", "DaemonSet"}, nil, nil},
		{"tempo", Tempo, values("tempo.yaml", a.tempoOverrides), []string{"StatefulSet"}, nil, nil},
		{"otel-collector", Collector, values("otel-collector.yaml", a.collectorOverrides), []string{"Deployment"}, collectorConfig,
			[]string{"otel/opentelemetry-collector-contrib:0.165.0"}},
		{"otel-agent", Collector, values("otel-agent.yaml", nil), []string{"DaemonSet", "ConfigMap"}, collectorConfig, nil},
		// The local cluster's: its image from the registry, Tempo and Loki
		// left out (what would go to them counted and dropped).
		{"otel-collector-mirrored", Collector, values("otel-collector.yaml", mirrored.collectorOverrides), []string{"Deployment"}, collectorConfig,
			[]string{"10.0.0.1:5000/mirror/otelcol" + dg}},
	} {
		t.Run(c.release, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%s-%s.tgz", c.chart.Name, c.chart.Version))
			ch, err := loader.Load(path)
			if err != nil {
				t.Fatalf("the pinned chart %s %s: %v", c.chart.Name, c.chart.Version, err)
			}
			for _, p := range unknownValues(c.values, chartValues(ch), "", c.free) {
				if !readByTemplates(ch, p) {
					t.Errorf("%s %s has no value %s", c.chart.Name, c.chart.Version, p)
				}
			}
			manifest := renderManifest(t, ch, c.release, c.values)
			kinds, images := kindsAndImages(manifest)
			if c.chart == Collector && !strings.Contains(c.release, "agent") && !strings.Contains(manifest, "name: "+CollectorConfigMap) {
				t.Errorf("%s does not mount liftoff's configuration (ConfigMap %s)", c.release, CollectorConfigMap)
			}
			t.Logf("%s %s runs %s", c.chart.Name, c.chart.Version, strings.Join(images, ", "))
			for _, k := range c.want {
				if kinds[k] == 0 {
					t.Errorf("%s %s rendered no %s (rendered: %v)", c.chart.Name, c.chart.Version, k, kinds)
				}
			}
			if slices.Equal(c.images, mirroredOnly) {
				for _, img := range images {
					if !strings.HasPrefix(img, "10.0.0.1:5000/mirror/") && !strings.HasPrefix(img, "docker.io/bats/") { // bats: helm test only
						t.Errorf("%s runs %s, not an image of the mirror", c.release, img)
					}
				}
			} else if c.images != nil && !slices.Equal(images, c.images) {
				t.Errorf("%s runs\n%s\nwant\n%s", c.release, strings.Join(images, "\n"), strings.Join(c.images, "\n"))
			}
		})
	}
}

// renderManifest installs ch client-only, as helm template does, and
// returns what it renders (its hooks too).
func renderManifest(t *testing.T, ch *chart.Chart, release string, values map[string]any) string {
	t.Helper()
	inst := action.NewInstall(&action.Configuration{})
	inst.DryRun, inst.ClientOnly, inst.IncludeCRDs = true, true, true
	inst.ReleaseName, inst.Namespace = release, DefaultNamespace
	inst.KubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	rel, err := inst.Run(ch, values)
	if err != nil {
		t.Fatalf("render %s: %v", ch.Metadata.Name, err)
	}
	manifest := rel.Manifest
	for _, h := range rel.Hooks { // the admission webhook's certificate jobs
		manifest += "\n---\n" + h.Manifest
	}
	return manifest
}

// kindsAndImages counts the kinds of what a manifest holds, and lists the
// images it runs.
func kindsAndImages(manifest string) (kinds map[string]int, images []string) {
	kinds = map[string]int{}
	seen := map[string]bool{}
	for _, doc := range strings.Split(manifest, "\n---") {
		kind := ""
		for _, line := range strings.Split(doc, "\n") {
			if k, ok := strings.CutPrefix(line, "kind: "); ok && kind == "" {
				kind = strings.TrimSpace(k)
				kinds[kind]++
			}
			line = strings.TrimSpace(line)
			if _, arg, ok := strings.Cut(line, "--prometheus-config-reloader="); ok { // an image the operator runs
				line = "image: " + arg
			}
			if img, ok := strings.CutPrefix(line, "image: "); ok && !seen[img] {
				seen[img] = true
				images = append(images, strings.Trim(img, `"`))
			}
		}
	}
	sort.Strings(images)
	return kinds, images
}

// mirroredOnly, as a case's images: every image from the mirror.
var mirroredOnly = []string{"every image from the mirror"}

// collectorConfig are the Collector's own pipeline sections, keyed by the
// components' ids (otlp/tempo, ...).
var collectorConfig = []string{"config.receivers", "config.processors", "config.exporters", "config.extensions", "config.connectors"}

// TestCollectorConfig runs the Collector liftoff's tests run
// (tools/otelcol, built by make testcluster beside the charts) on the
// configuration liftoff gives it, as a user has it and as the local cluster
// has it (Tempo and Loki left out): a component it lacks, or a setting its
// release refuses, fails here as it would fail the pod.
func TestCollectorConfig(t *testing.T) {
	chartsDir(t) // built beside the charts
	bin := filepath.Join(testenv.RepoRoot(t), ".cache", "bin", "otelcol")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the test Collector %s is missing: make testcluster builds it when the charts are there (tools/otelcol)", bin)
	}
	for _, a := range []Args{{}, {Off: []string{"tempo", "loki"}}} {
		cfg, err := a.collectorConfig()
		if err != nil {
			t.Fatal(err)
		}
		relay, _ := yaml.Marshal(cfg)
		file := filepath.Join(t.TempDir(), "relay.yaml")
		os.WriteFile(file, relay, 0o600)
		cmd := exec.Command(bin, "validate", "--config="+file)
		cmd.Env = append(os.Environ(), "MY_POD_IP=127.0.0.1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("off %v: the Collector refuses the configuration: %v\n%s\n%s", a.Off, err, out, relay)
		}
		exps := fmt.Sprint(getPath(cfg, "service", "pipelines", "traces", "exporters"))
		if want := map[bool]string{false: "[otlp/tempo]", true: "[debug]"}[a.off("tempo")]; exps != want {
			t.Errorf("off %v: traces go to %s, want %s", a.Off, exps, want)
		}
	}
}

// chartValues are ch's default values with each subchart's under its name
// (the parent's settings for it merged over them).
func chartValues(ch *chart.Chart) map[string]any {
	out := deepCopy(ch.Values)
	for _, sub := range ch.Dependencies() {
		own, _ := out[sub.Name()].(map[string]any)
		out[sub.Name()] = chartutil.MergeTables(own, chartValues(sub))
	}
	return out
}

// readByTemplates: a value the chart's values.yaml leaves out (commented
// out, as tempo's persistence.storageClassName) but a template reads.
func readByTemplates(ch *chart.Chart, path string) bool {
	for _, tpl := range ch.Templates {
		if strings.Contains(string(tpl.Data), ".Values."+path) {
			return true
		}
	}
	for _, sub := range ch.Dependencies() {
		if rest, ok := strings.CutPrefix(path, sub.Name()+"."); ok && readByTemplates(sub, rest) {
			return true
		}
	}
	return false
}

// unknownValues lists the paths in ours that defaults (a chart's values,
// with its subcharts' under their names) does not have. A map the chart
// leaves empty, or holds no map at, takes anything (labels, annotations, an
// Alertmanager config, resources).
func unknownValues(ours, defaults map[string]any, prefix string, free []string) []string {
	var bad []string
	for _, f := range free {
		if prefix == f+"." {
			return nil
		}
	}
	keys := make([]string, 0, len(ours))
	for k := range ours {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		d, ok := defaults[k]
		if !ok {
			bad = append(bad, prefix+k)
			continue
		}
		om, oIsMap := ours[k].(map[string]any)
		dm, dIsMap := d.(map[string]any)
		if oIsMap && dIsMap && len(dm) > 0 {
			bad = append(bad, unknownValues(om, dm, prefix+k+".", free)...)
		}
	}
	return bad
}
