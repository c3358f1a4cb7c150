package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestE2EObservability installs the monitoring stack the way `up` does for
// a user, on the real node: the pinned upstream charts from a mirror (the
// offline copy of the chart repositories, served over HTTP), every image
// from the cluster's registry (the operator, its config reloader,
// Prometheus, node exporter and the Collector built from their modules,
// Alertmanager from Debian), the parts this machine cannot run left out
// (testenv.MonitoringOff). Then, inside the cluster:
//   - the operator talks to the API server through the kubernetes Service;
//   - Prometheus scrapes the app's pods through the slots' ServiceMonitors,
//     labelled by slot and by the release up made (digest, who, when);
//   - node exporter reports the node's filesystems and memory;
//   - the shortener's PrometheusRule is loaded;
//   - Prometheus's alerts reach Alertmanager (Watchdog, always firing);
//   - the shortener's dashboard is where Grafana's sidecar would load it,
//     and its panels' queries are answered by the cluster's Prometheus;
//   - the app's OTLP traces reach the OpenTelemetry Collector;
//   - a release that answers 500 fires HighErrorRate (its window and wait
//     shortened), e-mailed naming that release; rolled back, it resolves;
//   - with the app's pods gone, ShortenerDown fires, reaches Alertmanager
//     after its 2 minutes naming the last release, and Alertmanager e-mails
//     it to liftoff:alertWebhook (an SMTP relay on the node's host address);
//     the app back, it resolves.
func TestE2EObservability(t *testing.T) {
	t.Parallel()
	mirror := testenv.ChartMirror(t)
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	repo := testenv.RepoRoot(t)
	images := cl.StandIns(t)
	monitoring, err := cl.PushMonitoring(repo)
	if err != nil {
		t.Fatal(err)
	}
	// Alertmanager's receiver: an SMTP relay on the node's host address,
	// reached from the Alertmanager pod (a relay on a private network,
	// without STARTTLS).
	sink := testenv.StartSinksOn(t, cl.Node.HostIP)
	args := []string{"init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set", "observability=true", "--set", "chartMirror=" + mirror, "--set", "observabilityOff=" + testenv.MonitoringOff,
		"--set", "bake=0s", "--set", "scaleDownDelay=1s", "--set", "podCIDRs=" + cl.Node.PodCIDR}
	for k, v := range images {
		args = append(args, "--set", k+"="+v)
	}
	for k, v := range monitoring {
		args = append(args, "--set", k+"="+v)
	}
	c.mustRun(args...)
	c.mustRun("config", "set", "-s", "dev", "--secret", "alertWebhook",
		"mailto:oncall@example.com?smarthost="+sink.SMTP+"&from=alerts@example.com&require_tls=false")
	start := time.Now()
	c.mustRun("up", "-s", "dev", "--yes", "--platform", "linux/amd64", "--smoke", "on")
	t.Logf("observability figures: up with the monitoring stack in %s", time.Since(start).Round(time.Second))

	const obs = "observability"
	query := func(svc, port, path string, params map[string]string) ([]byte, error) {
		return cl.Client.CoreV1().Services(obs).ProxyGet("http", svc, port, path, params).DoRaw(ctx)
	}
	promQuery := func(q string) ([]map[string]any, error) {
		b, err := query("kps-prometheus", "9090", "/api/v1/query", map[string]string{"query": q})
		if err != nil {
			return nil, err
		}
		var r struct {
			Data struct {
				Result []map[string]any `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		return r.Data.Result, nil
	}
	type alert struct {
		Labels, Annotations map[string]string
	}
	alertList := func() ([]alert, error) {
		b, err := query("kps-alertmanager", "9093", "/api/v2/alerts", nil)
		if err != nil {
			return nil, err
		}
		var as []alert
		if err := json.Unmarshal(b, &as); err != nil {
			return nil, fmt.Errorf("%s: %w", b, err)
		}
		return as, nil
	}
	alerts := func() (names []string, err error) {
		as, err := alertList()
		for _, a := range as {
			names = append(names, a.Labels["alertname"])
		}
		return names, err
	}
	var last string
	// inAlertmanager waits until alert is firing in Alertmanager, or,
	// with firing false, resolved there.
	inAlertmanager := func(alert string, firing bool, within time.Duration) {
		t.Helper()
		what := alert + " in Alertmanager"
		if !firing {
			what = alert + " resolved in Alertmanager"
		}
		eventually(t, what, within, func() bool {
			names, err := alerts()
			last = fmt.Sprint(names, err)
			return err == nil && slices.Contains(names, alert) == firing
		}, &last)
	}
	// mailed waits until Alertmanager has e-mailed alert, sent after since,
	// naming release.
	mailed := func(alert, release string, since time.Time, within time.Duration) {
		t.Helper()
		eventually(t, alert+" e-mailed by Alertmanager", within, func() bool {
			last = fmt.Sprint(len(sink.All()), " messages")
			n := sink.Find("email", since, alert)
			// The mail is quoted-printable: lines broken with a soft "=".
			return n != nil && strings.Contains(strings.ReplaceAll(n.Body, "=\r\n", ""), release)
		}, &last)
	}
	// scale sets a slot's Deployment to replicas.
	scale := func(deployment string, replicas int) {
		t.Helper()
		if _, err := cl.Client.AppsV1().Deployments("shortener").Patch(ctx, deployment, "application/merge-patch+json",
			fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, replicas), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// The app's pods, scraped by slot.
	eventually(t, "Prometheus scraping the app's live slot", 3*time.Minute, func() bool {
		r, err := promQuery(`up == 1`)
		if err != nil {
			last = err.Error()
			return false
		}
		var app bool
		var seen []string
		for _, s := range r {
			m, _ := s["metric"].(map[string]any)
			seen = append(seen, fmt.Sprintf("%v/%v", m["job"], m["slot"]))
			if slot, _ := m["slot"].(string); (slot == "blue" || slot == "green") && m["namespace"] == "shortener" {
				app = true
			}
		}
		last = strings.Join(seen, ", ")
		return app
	}, &last)
	t.Logf("observability figures: targets up: %s", last)

	// The node's own metrics, from node exporter: the host's /proc and
	// /sys, and its / mounted with HostToContainer propagation.
	eventually(t, "the node's metrics from node exporter", 2*time.Minute, func() bool {
		fsr, err := promQuery(`node_filesystem_size_bytes{job="node-exporter", mountpoint="/"}`)
		if err != nil {
			last = err.Error()
			return false
		}
		memr, err := promQuery(`node_memory_MemTotal_bytes{job="node-exporter"}`)
		if err != nil || len(fsr) == 0 || len(memr) == 0 {
			last = fmt.Sprint(fsr, memr, err)
			return false
		}
		dev, _ := fsr[0]["metric"].(map[string]any)["device"].(string)
		last = fmt.Sprintf("/ on %s %.0f GiB, memory %.1f GiB", dev, sampleValue(fsr[0])/(1<<30), sampleValue(memr[0])/(1<<30))
		return sampleValue(fsr[0]) > 0 && sampleValue(memr[0]) > 0
	}, &last)
	t.Logf("observability figures: node exporter: %s", last)

	// Every series of the live slot carries its release: the digest up
	// deployed, who, when.
	digest, slot := liveRelease(ctx, t, cl, "shortener")
	eventually(t, "the app's series labelled with its release", time.Minute, func() bool {
		r, err := promQuery(`up{namespace="shortener", release_digest!=""}`)
		last = fmt.Sprint(r, err)
		for _, s := range r {
			m, _ := s["metric"].(map[string]any)
			at, _ := time.Parse(time.RFC3339, fmt.Sprint(m["released_at"]))
			if m["release_digest"] == digest && m["released_by"] != "" && time.Since(at) < time.Hour {
				return true
			}
		}
		return false
	}, &last)

	// The shortener's rules, loaded from the PrometheusRule.
	eventually(t, "the shortener's rules loaded", 2*time.Minute, func() bool {
		b, err := query("kps-prometheus", "9090", "/api/v1/rules", nil)
		last = fmt.Sprint(err)
		return err == nil && strings.Contains(string(b), `"ShortenerDown"`) && strings.Contains(string(b), `"HighErrorRate"`)
	}, &last)

	// The shortener's dashboard, where Grafana's sidecar loads dashboards
	// from (a ConfigMap labelled grafana_dashboard, any namespace), and its
	// panels' queries answered by the cluster's Prometheus.
	cm, err := cl.Client.CoreV1().ConfigMaps(obs).Get(ctx, "shortener-dashboard", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cm.Labels["grafana_dashboard"]; !ok {
		t.Errorf("the dashboard's ConfigMap lacks the label Grafana's sidecar looks for: %v", cm.Labels)
	}
	dash, err := testenv.ParseDashboard([]byte(cm.Data["shortener.json"]), "shortener")
	if err != nil || dash.UID != "shortener" || dash.Panels == 0 {
		t.Fatalf("the dashboard's ConfigMap holds no shortener dashboard (%v): %.200s", err, cm.Data["shortener.json"])
	}
	var answered []string
	for _, q := range dash.Queries {
		if r, err := promQuery(q.Expr); err == nil && len(r) > 0 {
			answered = append(answered, q.Panel)
		}
	}
	t.Logf("observability figures: the dashboard's %d panels, %d queries, %d answered with data after the smoke test's traffic: %s",
		dash.Panels, len(dash.Queries), len(answered), strings.Join(slices.Compact(answered), ", "))
	if len(answered) == 0 {
		t.Errorf("no query of the dashboard's panels returns data from the cluster's Prometheus")
	}

	// The app's traces reach the Collector (liftoff's test distribution,
	// tools/otelcol): requests through the live Service, then the spans the
	// Collector's OTLP receiver accepted, as its own metrics count them.
	base := "http://" + clusterIP(t, cl, "shortener", "shortener")
	for range 5 {
		shorten(t, base, "https://example.com/traced")
	}
	collector, err := cl.Client.CoreV1().Pods(obs).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=otel-collector"})
	if err != nil || len(collector.Items) == 0 {
		t.Fatalf("no Collector pod: %v", err)
	}
	start = time.Now()
	eventually(t, "the app's spans accepted by the Collector", 2*time.Minute, func() bool {
		b, err := cl.Client.CoreV1().Pods(obs).ProxyGet("http", collector.Items[0].Name, "8888", "/metrics", nil).DoRaw(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		spans := 0.0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "otelcol_receiver_accepted_spans") {
				f := strings.Fields(line)
				var v float64
				fmt.Sscan(f[len(f)-1], &v)
				spans += v
			}
		}
		last = fmt.Sprintf("%.0f spans accepted", spans)
		return spans > 0
	}, &last)
	t.Logf("observability figures: the Collector accepted the app's spans (%s) %s after the requests", last, time.Since(start).Round(time.Second))

	// Prometheus → Alertmanager, inside the cluster.
	inAlertmanager("Watchdog", true, 3*time.Minute)

	// A release that answers 500: HighErrorRate fires, Alertmanager sends
	// it to the receiver naming that release, and once the release is
	// rolled back it resolves and the receiver hears so. The rule keeps its
	// threshold (0.5 %); only its window and wait are shortened (5m to 1m,
	// 2m to 30s), as the host test scales them.
	shortenRule(ctx, t, cl, obs, "HighErrorRate", map[string]string{"[5m]": "[1m]"}, "30s")
	c.breakApp()
	c.mustRun("deploy", "-s", "dev", "--platform", "linux/amd64", "--smoke", "off")
	broken, brokenSlot := liveRelease(ctx, t, cl, "shortener")
	// Ten requests a second, as a small app's users (the rule wants more
	// than 0.1 a second).
	stopLoad := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
				if resp, err := client.Get(base + "/"); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	failing := time.Now()
	mailed("HighErrorRate", broken, failing, 5*time.Minute)
	t.Logf("observability figures: HighErrorRate e-mailed %s after a release answering 500 went live (its rule waits 30s here)", time.Since(failing).Round(time.Second))
	c.mustRun("rollback", "-s", "dev")
	fixed := time.Now()
	// Resolved in Alertmanager. (Its message to the receiver follows at the
	// group's next interval, 5 minutes after the first: the host test,
	// TestAlertsEndToEnd, waits for those on every receiver.)
	inAlertmanager("HighErrorRate", false, 5*time.Minute)
	close(stopLoad)
	t.Logf("observability figures: HighErrorRate resolved in Alertmanager %s after the rollback", time.Since(fixed).Round(time.Second))
	// Alerts name the release made last, the rolled-back one, as
	// docs/observability.md says of a rollback.
	digest, slot = broken, brokenSlot

	// The app gone: ShortenerDown fires after its 2 minutes.
	deps, err := cl.Client.AppsV1().Deployments("shortener").List(ctx, metav1.ListOptions{LabelSelector: "liftoff.dev/slot"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps.Items {
		scale(d.Name, 0)
	}
	gone := time.Now()
	inAlertmanager("ShortenerDown", true, 5*time.Minute)
	t.Logf("observability figures: ShortenerDown reached Alertmanager %s after the app's pods were scaled to 0 (its rule waits 2m)", time.Since(gone).Round(time.Second))
	// It names the last release, though no pod is left to scrape.
	as, err := alertList()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Labels["alertname"] == "ShortenerDown" && !strings.HasPrefix(a.Annotations["last_release"], digest+" (slot "+slot+" in shortener) by ") {
			t.Errorf("ShortenerDown's last_release is %q, want the release up made (%s)", a.Annotations["last_release"], digest)
		}
	}
	// And Alertmanager's route sends it on (after its 30 s group wait),
	// the last release with it.
	mailed("ShortenerDown", digest, gone, 3*time.Minute)
	t.Logf("observability figures: ShortenerDown e-mailed to the receiver %s after the app's pods were scaled to 0", time.Since(gone).Round(time.Second))
	// The live slot back: ShortenerDown resolves.
	scale("shortener-"+selector(t, cl, "shortener"), 1)
	back := time.Now()
	inAlertmanager("ShortenerDown", false, 5*time.Minute)
	t.Logf("observability figures: ShortenerDown resolved in Alertmanager %s after the live slot was scaled back to 1", time.Since(back).Round(time.Second))

	// Its footprint: each component's resident memory, as it reports it
	// to Prometheus. (The kubelet's cAdvisor endpoint, which Prometheus
	// scrapes, has no container labels here: cAdvisor looks for containerd
	// at its fixed /run/containerd/containerd.sock, and the node's
	// containerd has its own socket. Its resource metrics have them: below.)
	r, err := promQuery(`max by (job) (process_resident_memory_bytes{namespace="observability"})`)
	if err != nil {
		t.Fatal(err)
	}
	var mem []string
	for _, s := range r {
		m, _ := s["metric"].(map[string]any)
		mem = append(mem, fmt.Sprintf("%v %.0f MiB", m["job"], sampleValue(s)/(1<<20)))
	}
	slices.Sort(mem)
	t.Logf("observability figures: resident memory: %s", strings.Join(mem, ", "))
	if len(mem) < 3 {
		t.Errorf("resident memory of %d of the 3 components (operator, Prometheus, Alertmanager): %v", len(mem), mem)
	}
	// What the stack uses, per container, as the kubelet measures it (its
	// resource metrics, what metrics-server reads): the working set, and
	// the CPU over 20 s.
	before := kubeletUsage(ctx, t, cl, obs)
	time.Sleep(20 * time.Second)
	after := kubeletUsage(ctx, t, cl, obs)
	var use []string
	var totalCPU, totalWS float64
	for k, a := range after {
		cpu := (a.cpu - before[k].cpu) / 20 * 1000
		totalCPU += cpu
		totalWS += a.ws
		use = append(use, fmt.Sprintf("%s %.0f MiB %.0f mCPU", k, a.ws/(1<<20), cpu))
	}
	slices.Sort(use)
	t.Logf("observability figures: used (kubelet, per container): %s; in all %.0f MiB, %.0f mCPU", strings.Join(use, ", "), totalWS/(1<<20), totalCPU)
	if len(use) < 3 {
		t.Errorf("the kubelet measured %d containers of the stack: %v", len(use), use)
	}
	// What the stack asks the scheduler for (its pods' requests and limits).
	pods, err := cl.Client.CoreV1().Pods(obs).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cpu, memReq, memLim int64
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			cpu += c.Resources.Requests.Cpu().MilliValue()
			memReq += c.Resources.Requests.Memory().Value()
			memLim += c.Resources.Limits.Memory().Value()
		}
	}
	t.Logf("observability figures: %d pods request %d mCPU and %d MiB, memory limits %d MiB", len(pods.Items), cpu, memReq>>20, memLim>>20)
}

// shortenRule scales one shipped alert's windows and wait in the cluster's
// PrometheusRule (the operator reloads Prometheus), leaving its threshold.
func shortenRule(ctx context.Context, t *testing.T, cl *testenv.Cluster, ns, alert string, windows map[string]string, wait string) {
	t.Helper()
	path := "/apis/monitoring.coreos.com/v1/namespaces/" + ns + "/prometheusrules/shortener"
	b, err := cl.Client.CoreV1().RESTClient().Get().AbsPath(path).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rule map[string]any
	if err := json.Unmarshal(b, &rule); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range rule["spec"].(map[string]any)["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			r := r.(map[string]any)
			if r["alert"] != alert {
				continue
			}
			expr := r["expr"].(string)
			for from, to := range windows {
				expr = strings.ReplaceAll(expr, from, to)
			}
			r["expr"], r["for"], found = expr, wait, true
		}
	}
	if !found {
		t.Fatalf("no rule %s in the PrometheusRule", alert)
	}
	b, _ = json.Marshal(rule)
	if err := cl.Client.CoreV1().RESTClient().Put().AbsPath(path).Body(b).Do(ctx).Error(); err != nil {
		t.Fatal(err)
	}
}

// sampleValue is the value of one sample of a Prometheus instant query's
// result (0 when it has none).
func sampleValue(s map[string]any) float64 {
	v, _ := s["value"].([]any)
	var f float64
	if len(v) == 2 {
		fmt.Sscan(fmt.Sprint(v[1]), &f)
	}
	return f
}

// eventually polls cond every 2 s until it holds, failing after d with the
// last state it saw.
func eventually(t *testing.T, what string, d time.Duration, cond func() bool, last *string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last seen: %s)", what, d, *last)
		}
		time.Sleep(2 * time.Second)
	}
}

// liveRelease is the app's live slot and the image digest it runs.
func liveRelease(ctx context.Context, t *testing.T, cl *testenv.Cluster, ns string) (digest, slot string) {
	t.Helper()
	svc, err := cl.Client.CoreV1().Services(ns).Get(ctx, "shortener", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slot = svc.Spec.Selector["liftoff.dev/slot"]
	d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "shortener-"+slot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, digest, ok := strings.Cut(d.Spec.Template.Spec.Containers[0].Image, "@")
	if !ok {
		t.Fatalf("live image %s has no digest", d.Spec.Template.Spec.Containers[0].Image)
	}
	return digest, slot
}

// usage is a container's CPU time (seconds) and memory working set (bytes).
type usage struct{ cpu, ws float64 }

// kubeletUsage reads the real node's resource metrics through the API
// server (with expfmt, as the bake reads the app's /metrics): each
// container of namespace ns, by pod-name prefix/container.
func kubeletUsage(ctx context.Context, t *testing.T, cl *testenv.Cluster, ns string) map[string]usage {
	t.Helper()
	b, err := cl.Client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + cl.Node.Name + "/proxy/metrics/resource").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the kubelet's resource metrics: %v", err)
	}
	out := map[string]usage{}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes"} {
		for _, m := range fams[name].GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["namespace"] != ns {
				continue
			}
			// The pod's name without its generated suffix: the component.
			pod := l["pod"]
			if i := strings.LastIndex(pod, "-"); i > 0 && strings.Count(pod, "-") > 1 {
				pod = pod[:i]
			}
			k := pod + "/" + l["container"]
			u := out[k]
			if name == "container_cpu_usage_seconds_total" {
				u.cpu = m.GetCounter().GetValue()
			} else {
				u.ws = m.GetGauge().GetValue()
			}
			out[k] = u
		}
	}
	return out
}
