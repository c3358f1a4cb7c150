package observability

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

const webhook = "https://hooks.slack.com/services/T000/B000/very-secret-token"

func run(t *testing.T, args *Args) (*testenv.Mocks, map[string]pulumi.Output) {
	t.Helper()
	m := &testenv.Mocks{}
	if args.GrafanaPassword == nil {
		args.GrafanaPassword = pulumi.ToSecret(pulumi.String("generated-admin-password")).(pulumi.StringOutput)
	}
	outs := map[string]pulumi.Output{}
	m.Run(t, "shortener", "dev", nil, func(ctx *pulumi.Context) error {
		o, err := New(ctx, "obs", args)
		if err != nil {
			return err
		}
		outs["password"], outs["grafana"], outs["otlp"] = o.GrafanaAdminPassword, o.GrafanaService, o.OTLPEndpoint
		return nil
	})
	return m, outs
}

// releases are the component's Helm releases (run names them obs-...) and
// the charts they install.
var releases = map[string]Chart{"obs-kps": PrometheusStack, "obs-loki": Loki, "obs-tempo": Tempo, "obs-otel-collector": Collector, "obs-otel-agent": Collector}

func TestComponent(t *testing.T) {
	m, outs := run(t, &Args{Retention: 14 * 24 * time.Hour, StorageClass: "gp3", AlertWebhook: pulumi.ToSecret(pulumi.String(webhook)).(pulumi.StringOutput), AlertWebhookKind: "slack"})

	ns := m.Get(t, "kubernetes:core/v1:Namespace", "obs-ns")
	if v, _ := testenv.Lookup(ns.Inputs, "metadata.name"); v.StringValue() != "observability" {
		t.Errorf("namespace: %v", v)
	}
	crds := m.Get(t, "kubernetes:helm.sh/v4:Chart", "obs-crds")
	if v, _ := testenv.Lookup(crds.Inputs, "version"); v.StringValue() != OperatorCRDs.Version {
		t.Errorf("CRD chart version: %v", v)
	}
	for name, chart := range releases {
		r := m.Get(t, "kubernetes:helm.sh/v3:Release", name)
		for key, want := range map[string]string{"chart": chart.Name, "version": chart.Version, "namespace": "observability", "repositoryOpts.repo": chart.Repo} {
			if v, ok := testenv.Lookup(r.Inputs, key); !ok || v.StringValue() != want {
				t.Errorf("%s %s = %v, want %s", name, key, v, want)
			}
		}
	}
	kps := m.Get(t, "kubernetes:helm.sh/v3:Release", "obs-kps")
	if v, _ := testenv.Lookup(kps.Inputs, "skipCrds"); !v.BoolValue() {
		t.Error("kube-prometheus-stack would install CRDs client-side")
	}
	// The webhook makes the whole values map secret: nothing of it is stored in plain text.
	values := kps.Inputs["values"]
	if !values.ContainsSecrets() {
		t.Fatal("values holding the alert webhook are not secret")
	}
	for key, want := range map[string]string{
		"prometheus.prometheusSpec.retention":                                             "14d",
		"prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName": "gp3",
		"grafana.admin.existingSecret":                                                    "grafana-admin",
	} {
		if v, ok := testenv.Lookup(values.SecretValue().Element.ObjectValue(), key); !ok || v.StringValue() != want {
			t.Errorf("kps values %s = %v, want %s", key, v, want)
		}
	}
	recv, _ := testenv.Lookup(values.SecretValue().Element.ObjectValue(), "alertmanager.config.receivers")
	if !strings.Contains(testenv.Show(recv), "slack_configs") {
		t.Errorf("alertmanager receivers: %s", testenv.Show(recv))
	}
	loki := m.Get(t, "kubernetes:helm.sh/v3:Release", "obs-loki")
	if v, _ := testenv.Lookup(loki.Inputs, "values.loki.limits_config.retention_period"); v.StringValue() != "336h" {
		t.Errorf("loki retention: %v", v)
	}
	rule := m.Get(t, "kubernetes:monitoring.coreos.com/v1:PrometheusRule", "obs-shortener-rules")
	if !strings.Contains(testenv.Show(rule.Inputs["spec"]), "EventBufferBacklog") {
		t.Errorf("rules: %s", testenv.Show(rule.Inputs["spec"]))
	}
	dash := m.Get(t, "kubernetes:core/v1:ConfigMap", "obs-dashboard")
	if v, _ := testenv.Lookup(dash.Inputs, "metadata.labels.grafana_dashboard"); v.StringValue() != "1" {
		t.Error("dashboard ConfigMap is not labelled for Grafana's sidecar")
	}
	// The Grafana password: generated, secret in state and outputs.
	sec := m.Get(t, "kubernetes:core/v1:Secret", "obs-grafana-admin")
	if pw, _ := testenv.Lookup(sec.Inputs, "stringData"); !pw.ContainsSecrets() {
		t.Error("grafana admin secret stored in plain text")
	}
	pw, secret := await(t, outs["password"])
	if pw != "generated-admin-password" || !secret {
		t.Errorf("password output: secret=%v", secret)
	}
	if g, secret := await(t, outs["grafana"]); g != "kps-grafana.observability.svc:80" || secret {
		t.Errorf("grafana output %q", g)
	}
	for _, r := range m.Resources {
		if strings.Contains(testenv.Show(resource.NewObjectProperty(r.Inputs)), "very-secret-token") {
			t.Errorf("%s %s holds the webhook in plain text", r.Type, r.Name)
		}
	}
}

func await(t *testing.T, o pulumi.Output) (string, bool) {
	t.Helper()
	ch := make(chan string, 1)
	pulumi.All(o).ApplyT(func(v []any) int { ch <- v[0].(string); return 0 })
	select {
	case s := <-ch:
		return s, pulumi.IsSecret(o)
	case <-time.After(5 * time.Second):
		t.Fatal("output never resolved")
		return "", false
	}
}

func TestArgsValidated(t *testing.T) {
	for _, a := range []Args{
		{Retention: time.Hour},
		{Retention: 48 * time.Hour, Namespace: "Bad_NS"},
		{Retention: 48 * time.Hour, AlertWebhook: pulumi.String(webhook), AlertWebhookKind: "pager"},
	} {
		err := pulumi.RunErr(func(ctx *pulumi.Context) error { _, err := New(ctx, "obs", &a); return err }, pulumi.WithMocks("p", "s", &testenv.Mocks{}))
		if err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
}

// TestPromtool runs Prometheus' own checker and the alert unit tests.
func TestPromtool(t *testing.T) {
	promtool := testenv.Command(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "shortener.rules.yaml"}, {"test", "rules", "shortener.rules.test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "rules"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
	// Every alert has a summary, a severity and a written runbook.
	spec, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert       string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	b, _ := yaml.Marshal(spec)
	yaml.Unmarshal(b, &doc)
	alerts := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			alerts++
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" || !strings.HasSuffix(r.Annotations["runbook_url"], "/"+r.Alert+".md") {
				t.Errorf("%s: summary, severity or runbook missing", r.Alert)
			}
			if _, err := os.Stat(filepath.Join("../../docs/runbooks", r.Alert+".md")); err != nil {
				t.Errorf("%s: runbook not written", r.Alert)
			}
		}
	}
	if alerts != 6 {
		t.Errorf("%d alerts, want 6", alerts)
	}
}

// TestAlertmanagerConfigs checks each receiver kind with amtool.
func TestAlertmanagerConfigs(t *testing.T) {
	amtool := testenv.Command(t, "amtool", "prometheus-alertmanager")
	for _, dest := range []string{webhook, "https://discord.com/api/webhooks/1/abc",
		"mailto:ops@acme.dev?smarthost=smtp.acme.dev:587&from=alerts@acme.dev&username=u&password=p",
		"mailto:ops@acme.dev?smarthost=relay.internal:25&from=alerts@acme.dev&require_tls=false"} {
		d, err := notify.Parse(dest)
		if err != nil {
			t.Fatal(err)
		}
		kind := d.Kind
		cfg, err := AlertmanagerConfig(d)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		b, _ := yaml.Marshal(cfg)
		path := filepath.Join(t.TempDir(), "alertmanager.yaml")
		os.WriteFile(path, b, 0o600)
		if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
			t.Errorf("%s config rejected by amtool: %v\n%s\n%s", kind, err, out, b)
		}
	}
	if _, err := AlertmanagerConfig(notify.Dest{Kind: "pager"}); err == nil {
		t.Error("an unknown receiver kind accepted")
	}
	if WebhookKind("mailto:ops@acme.dev") != "" || WebhookKind("ftp://x") != "" || WebhookKind("https://alerts.acme.dev/hook") != "" ||
		WebhookKind("https://hooks.slack.com/x") != "slack" || WebhookKind("slack+https://chat.acme.dev/hooks/x") != "slack" {
		t.Error("WebhookKind")
	}
}

var metricRE = regexp.MustCompile(`\b((?:shortener|process|go)_[a-z0-9_]+)`)

// TestMetricNamesExist starts the shortener and reads its /metrics: every
// shortener_, process_ and go_ metric the rules and the dashboard use must
// be one it exports (kube_ series come from kube-state-metrics).
func TestMetricNamesExist(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: pg.URL, CacheURL: rd.URL, Version: "test", Slot: "blue",
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(nil, 0, 10*time.Second)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	// Exercise the paths that create labelled series: a redirect, a cache lookup, a 404, a rejected event write is not needed.
	http.Post(srv.URL+"/users", "application/json", strings.NewReader(`{"username":"m","email":"m@x.io"}`))
	res, _ := http.Post(srv.URL+"/urls", "application/json", strings.NewReader(`{"user_id":1,"original_url":"https://x.io"}`))
	b, _ := io.ReadAll(res.Body)
	code := regexp.MustCompile(`"short_code":"([^"]+)"`).FindStringSubmatch(string(b))[1]
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	noFollow.Get(srv.URL + "/" + code)
	noFollow.Get(srv.URL + "/nope")
	http.Get(srv.URL + "/events")
	ms := httptest.NewServer(svc.API.MetricsHandler())
	defer ms.Close()
	res, _ = http.Get(ms.URL + "/metrics")
	exposition, _ := io.ReadAll(res.Body)
	exported := map[string]bool{}
	for _, line := range strings.Split(string(exposition), "\n") {
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			exported[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[f[2]+s] = true
				}
			}
		}
	}
	rules, _ := files.ReadFile("rules/shortener.rules.yaml")
	used := map[string]bool{}
	for _, src := range [][]byte{rules, Dashboard()} {
		for _, m := range metricRE.FindAllStringSubmatch(string(src), -1) {
			used[m[1]] = true
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d metric names in rules and dashboard: %v", len(used), used)
	}
	for name := range used {
		if !exported[name] {
			t.Errorf("%s is used by the rules or dashboard but the shortener does not export it", name)
		}
	}
}

// TestChartMirror: with a mirror, every chart comes from it (an HTTP Helm
// repository by name, or an OCI registry at <mirror>/<name>), at the pin.
func TestChartMirror(t *testing.T) {
	for _, mirror := range []string{"https://charts.acme.dev/liftoff", "oci://registry.acme.dev/charts"} {
		m, _ := run(t, &Args{Retention: 14 * 24 * time.Hour, ChartMirror: mirror})
		oci := strings.HasPrefix(mirror, "oci://")
		check := func(typ, name string, c Chart) {
			r := m.Get(t, typ, name)
			chart, _ := testenv.Lookup(r.Inputs, "chart")
			repo, hasRepo := testenv.Lookup(r.Inputs, "repositoryOpts.repo")
			version, _ := testenv.Lookup(r.Inputs, "version")
			wantChart, wantRepo := c.Name, mirror
			if oci {
				wantChart, wantRepo = mirror+"/"+c.Name, ""
			}
			if chart.StringValue() != wantChart || (hasRepo && repo.StringValue() != wantRepo) || (!hasRepo && wantRepo != "") || version.StringValue() != c.Version {
				t.Errorf("mirror %s: %s is chart %v from %v at %v, want %s from %q at %s", mirror, name, chart, repo, version, wantChart, wantRepo, c.Version)
			}
		}
		check("kubernetes:helm.sh/v4:Chart", "obs-crds", OperatorCRDs)
		for name, c := range releases {
			check("kubernetes:helm.sh/v3:Release", name, c)
		}
	}
}

func TestSplitImage(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for ref, want := range map[string]image{
		"quay.io/prometheus/prometheus:v3.6.0":     {"quay.io", "prometheus/prometheus", "v3.6.0", ""},
		"10.0.0.1:5000/mirror/alertmanager@" + d:   {"10.0.0.1:5000", "mirror/alertmanager", "", d},
		"localhost/a/b:1@" + d:                     {"localhost", "a/b", "1", d},
		"prom/prometheus:v3.6.0":                   {"docker.io", "prom/prometheus", "v3.6.0", ""},
		"busybox:1":                                {"docker.io", "library/busybox", "1", ""},
		"registry.internal:5000/prometheus:v3.6.0": {"registry.internal:5000", "prometheus", "v3.6.0", ""},
	} {
		got, err := splitImage(ref)
		if err != nil || got != want {
			t.Errorf("splitImage(%q) = %+v, %v; want %+v", ref, got, err, want)
		}
	}
	for _, bad := range []string{"quay.io/prometheus/prometheus", "a/b@sha256:12", "quay.io/x@md5:00"} {
		if _, err := splitImage(bad); err == nil {
			t.Errorf("splitImage(%q): no error", bad)
		}
	}
}
