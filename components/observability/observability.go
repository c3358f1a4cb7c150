// Package observability is the monitoring every liftoff stack gets:
// Prometheus, Alertmanager and Grafana (kube-prometheus-stack), Loki, Tempo,
// an OpenTelemetry Collector for the app's OTLP, a collector on every node
// shipping pod logs, and the shortener's dashboard and alerts.
package observability

import (
	"embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	helmv4 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v4"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-dev/liftoff/components/upstream"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// DefaultNamespace is where the monitoring stack runs unless told otherwise.
const DefaultNamespace = "observability"

//go:embed values/*.yaml rules/shortener.rules.yaml dashboards/shortener.json
var files embed.FS

// Chart is a pinned upstream Helm chart.
type Chart = upstream.Chart

// Pinned charts. Bump them together and run `liftoff preview`.
var (
	OperatorCRDs    = Chart{Name: "prometheus-operator-crds", Repo: "https://prometheus-community.github.io/helm-charts", Version: "23.0.0"}
	PrometheusStack = Chart{Name: "kube-prometheus-stack", Repo: "https://prometheus-community.github.io/helm-charts", Version: "77.14.0"}
	Loki            = Chart{Name: "loki", Repo: "https://grafana.github.io/helm-charts", Version: "6.5.2"}
	Tempo           = Chart{Name: "tempo", Repo: "https://grafana.github.io/helm-charts", Version: "1.10.1"}
	Collector       = Chart{Name: "opentelemetry-collector", Repo: "https://open-telemetry.github.io/opentelemetry-helm-charts", Version: "0.97.1"}
)

// Args configure the component. Everything but the webhook is plain and
// validated before any resource is declared.
type Args struct {
	// Namespace for the monitoring stack (default "observability").
	Namespace string
	// ChartMirror, when set, is where every chart comes from instead of
	// its public repository (upstream.Chart.Source).
	ChartMirror string
	// StorageClass for volumes; empty uses the cluster default.
	StorageClass string
	// Retention of metrics, logs and traces (at least one day).
	Retention time.Duration
	// AlertWebhook is where Alertmanager sends alerts (a secret); nil keeps alerts in the UI.
	AlertWebhook pulumi.StringInput
	// AlertWebhookKind is what AlertWebhook is: slack, discord or email (see WebhookKind).
	AlertWebhookKind string
	// GrafanaPassword is Grafana's admin password (a secret liftoff generates).
	GrafanaPassword pulumi.StringInput
	// Images replace the charts' images by part: operator, configReloader,
	// prometheus (its tag is the version the operator configures it for),
	// alertmanager, nodeExporter. A part not named keeps the chart's image.
	Images map[string]string
	// Off are the parts left out: grafana, loki, tempo, collector (the
	// Collector and the node log agent), kubeStateMetrics, nodeExporter,
	// admissionWebhooks. Prometheus, Alertmanager and the operator always run.
	Off []string
}

// Parts are what Args.Off may name (liftoff:observabilityOff's).
var Parts = config.ObservabilityParts

// imageValues are where each part's image goes in kube-prometheus-stack's
// values, and how that chart wants the digest: as sha (hex only), as
// digest (sha256:hex, the node exporter's subchart) or as sha with its
// sha256: (kube-state-metrics's).
var imageValues = map[string]struct {
	path            []string
	digest, fullSHA bool
}{
	"operator":         {path: []string{"prometheusOperator", "image"}},
	"configReloader":   {path: []string{"prometheusOperator", "prometheusConfigReloader", "image"}},
	"prometheus":       {path: []string{"prometheus", "prometheusSpec", "image"}},
	"alertmanager":     {path: []string{"alertmanager", "alertmanagerSpec", "image"}},
	"nodeExporter":     {path: []string{"prometheus-node-exporter", "image"}, digest: true},
	"grafana":          {path: []string{"grafana", "image"}},
	"grafanaSidecar":   {path: []string{"grafana", "sidecar", "image"}},
	"kubeStateMetrics": {path: []string{"kube-state-metrics", "image"}, fullSHA: true},
	"webhookCertgen":   {path: []string{"prometheusOperator", "admissionWebhooks", "patch", "image"}},
}

// taggedImages are the parts whose chart writes a tag even beside a digest.
var taggedImages = []string{"grafana", "grafanaSidecar", "webhookCertgen", "tempo"}

// otherImages are the parts whose image another chart takes.
var otherImages = []string{"collector", "tempo"}

// Observability is the installed stack.
type Observability struct {
	pulumi.ResourceState

	Namespace            pulumi.StringOutput `pulumi:"namespace"`
	GrafanaService       pulumi.StringOutput `pulumi:"grafanaService"`
	PrometheusService    pulumi.StringOutput `pulumi:"prometheusService"`
	AlertmanagerService  pulumi.StringOutput `pulumi:"alertmanagerService"`
	OTLPEndpoint         pulumi.StringOutput `pulumi:"otlpEndpoint"`
	GrafanaAdminPassword pulumi.StringOutput `pulumi:"grafanaAdminPassword"`
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (a *Args) validate() error {
	if a.Namespace == "" {
		a.Namespace = DefaultNamespace
	}
	if !dnsLabel.MatchString(a.Namespace) {
		return fmt.Errorf("observability: namespace %q is not a DNS label", a.Namespace)
	}
	if a.GrafanaPassword == nil {
		return fmt.Errorf("observability: the Grafana admin password is required")
	}
	if a.Retention < 24*time.Hour {
		return fmt.Errorf("observability: retention %s is under one day", a.Retention)
	}
	for part, ref := range a.Images {
		if _, ok := imageValues[part]; !ok && !slices.Contains(otherImages, part) {
			return fmt.Errorf("observability: image of %q: not a part whose image liftoff sets (%s)", part, strings.Join(slices.Sorted(maps.Keys(config.MonitoringImages)), ", "))
		}
		im, err := splitImage(ref)
		if err != nil {
			return fmt.Errorf("observability: image of %s: %w", part, err)
		}
		if slices.Contains(taggedImages, part) && im.tag == "" {
			return fmt.Errorf("observability: image of %s: %q has no tag, which its chart writes beside the digest (registry/name:1.2.3@sha256:...)", part, ref)
		}
	}
	for _, p := range a.Off {
		if !slices.Contains(Parts, p) {
			return fmt.Errorf("observability: %q is not a part that can be left out (%s)", p, strings.Join(Parts, ", "))
		}
	}
	if a.AlertWebhook != nil {
		switch a.AlertWebhookKind {
		case "slack", "discord", "email":
		default:
			return fmt.Errorf("observability: alert webhook kind %q is not slack, discord or email", a.AlertWebhookKind)
		}
	}
	return nil
}

// New installs the stack into the cluster of the Kubernetes provider in opts.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Observability, error) {
	if args == nil {
		args = &Args{}
	}
	a := *args
	if err := a.validate(); err != nil {
		return nil, err
	}
	o := &Observability{}
	if err := ctx.RegisterComponentResource("liftoff:observability:Observability", name, o, opts...); err != nil {
		return nil, err
	}
	child := pulumi.Parent(o)
	ns, err := corev1.NewNamespace(ctx, name+"-ns", &corev1.NamespaceArgs{Metadata: &metav1.ObjectMetaArgs{
		Name: pulumi.String(a.Namespace), Labels: pulumi.ToStringMap(outputs.OwnerLabels(ctx.Project(), ctx.Stack()))}}, child)
	if err != nil {
		return nil, err
	}
	inNS := []pulumi.ResourceOption{child, pulumi.DependsOn([]pulumi.Resource{ns})}

	// CRDs server-side applied through Pulumi (Chart v4 renders, Pulumi applies with SSA):
	// the operator's CRDs exceed kubectl's last-applied annotation limit, and
	// Helm would never upgrade them from a chart's crds/ directory.
	crdChart, crdRepo := OperatorCRDs.ForChart(a.ChartMirror)
	crds, err := helmv4.NewChart(ctx, name+"-crds", &helmv4.ChartArgs{
		Chart: crdChart, Version: pulumi.String(OperatorCRDs.Version), RepositoryOpts: crdRepo, Namespace: pulumi.String(a.Namespace),
	}, inNS...)
	if err != nil {
		return nil, err
	}

	password := pulumi.ToSecret(a.GrafanaPassword).(pulumi.StringOutput)
	adminSecret, err := corev1.NewSecret(ctx, name+"-grafana-admin", &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String("grafana-admin"), Namespace: pulumi.String(a.Namespace)},
		StringData: pulumi.StringMap{"admin-user": pulumi.String("admin"), "admin-password": password},
	}, inNS...)
	if err != nil {
		return nil, err
	}
	dashboard, _ := files.ReadFile("dashboards/shortener.json")
	if _, err := corev1.NewConfigMap(ctx, name+"-dashboard", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("shortener-dashboard"), Namespace: pulumi.String(a.Namespace),
			Labels: pulumi.StringMap{"grafana_dashboard": pulumi.String("1")}},
		Data: pulumi.StringMap{"shortener.json": pulumi.String(string(dashboard))},
	}, inNS...); err != nil {
		return nil, err
	}

	kpsValues, err := a.prometheusValues()
	if err != nil {
		return nil, err
	}
	var values pulumi.MapInput = pulumi.ToMap(kpsValues)
	if a.AlertWebhook != nil {
		values = a.AlertWebhook.ToStringOutput().ApplyT(func(hook string) (map[string]any, error) {
			d, err := notify.Parse(hook)
			if err != nil {
				return nil, fmt.Errorf("alert webhook %w", err)
			}
			cfg, err := AlertmanagerConfig(d)
			if err != nil {
				return nil, err
			}
			out := deepCopy(kpsValues)
			setPath(out, []string{"alertmanager", "config"}, cfg)
			return out, nil
		}).(pulumi.MapOutput)
	}
	kpsChart, kpsRepo := PrometheusStack.Release(a.ChartMirror)
	kps, err := helmv3.NewRelease(ctx, name+"-kps", &helmv3.ReleaseArgs{
		Name: pulumi.String("kps"), Chart: kpsChart, Version: pulumi.String(PrometheusStack.Version),
		RepositoryOpts: kpsRepo, Namespace: pulumi.String(a.Namespace),
		SkipCrds: pulumi.Bool(true), Values: values, Timeout: pulumi.Int(900), MaxHistory: pulumi.Int(5),
	}, append(inNS, pulumi.DependsOn([]pulumi.Resource{crds, adminSecret}))...)
	if err != nil {
		return nil, err
	}

	for _, r := range []struct {
		name, part string
		chart      Chart
		file       string
		set        func(map[string]any)
	}{
		{"loki", "loki", Loki, "loki.yaml", a.lokiOverrides},
		{"tempo", "tempo", Tempo, "tempo.yaml", a.tempoOverrides},
		{"otel-collector", "collector", Collector, "otel-collector.yaml", a.collectorOverrides},
		{"otel-agent", "logAgent", Collector, "otel-agent.yaml", nil}, // the chart's contrib 0.104.0, its config: not set
	} {
		if a.off(r.part) || (r.name == "otel-agent" && !a.runsLogAgent()) {
			continue
		}
		v, err := loadValues(r.file)
		if err != nil {
			return nil, err
		}
		if r.set != nil {
			r.set(v)
		}
		chart, repo := r.chart.Release(a.ChartMirror)
		rel := &helmv3.ReleaseArgs{
			Name: pulumi.String(r.name), Chart: chart, Version: pulumi.String(r.chart.Version),
			RepositoryOpts: repo, Namespace: pulumi.String(a.Namespace),
			Values: pulumi.ToMap(v), Timeout: pulumi.Int(600), MaxHistory: pulumi.Int(5),
		}
		opts := inNS
		if r.name == "otel-collector" {
			cm, err := a.collectorConfigMap(ctx, name, inNS...)
			if err != nil {
				return nil, err
			}
			opts = append(slices.Clone(inNS), pulumi.DependsOn([]pulumi.Resource{ns, cm}))
		}
		if _, err := helmv3.NewRelease(ctx, name+"-"+r.name, rel, opts...); err != nil {
			return nil, err
		}
	}

	rules, err := Rules()
	if err != nil {
		return nil, err
	}
	if _, err := apiextensions.NewCustomResource(ctx, name+"-shortener-rules", &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"), Kind: pulumi.String("PrometheusRule"),
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String("shortener"), Namespace: pulumi.String(a.Namespace),
			Labels: pulumi.StringMap{"app.kubernetes.io/part-of": pulumi.String("shortener")}},
		OtherFields: kubernetes.UntypedArgs{"spec": rules},
	}, append(inNS, pulumi.DependsOn([]pulumi.Resource{crds, kps}))...); err != nil {
		return nil, err
	}

	svc := func(n string, port int) pulumi.StringOutput {
		return pulumi.Sprintf("%s.%s.svc:%d", n, a.Namespace, port)
	}
	o.Namespace = ns.Metadata.Name().Elem()
	o.GrafanaService = svc("kps-grafana", 80)
	if a.off("grafana") {
		o.GrafanaService = pulumi.String("").ToStringOutput() // liftoff open grafana says there is none
	}
	o.PrometheusService = svc("kps-prometheus", 9090)
	o.AlertmanagerService = svc("kps-alertmanager", 9093)
	o.OTLPEndpoint = pulumi.Sprintf("http://otel-collector.%s.svc:4318", a.Namespace)
	if a.off("collector") {
		o.OTLPEndpoint = pulumi.String("").ToStringOutput() // the app exports no traces
	}
	o.GrafanaAdminPassword = password
	return o, ctx.RegisterResourceOutputs(o, pulumi.Map{
		"namespace": o.Namespace, "grafanaService": o.GrafanaService, "prometheusService": o.PrometheusService,
		"alertmanagerService": o.AlertmanagerService, "otlpEndpoint": o.OTLPEndpoint, "grafanaAdminPassword": o.GrafanaAdminPassword,
	})
}

// Rules returns the PrometheusRule spec: the groups of rules/shortener.rules.yaml.
func Rules() (map[string]any, error) {
	b, err := files.ReadFile("rules/shortener.rules.yaml")
	if err != nil {
		return nil, err
	}
	var spec map[string]any
	if err := yaml.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	return spec, nil
}

// Dashboard returns the shortener dashboard's JSON.
func Dashboard() []byte {
	b, _ := files.ReadFile("dashboards/shortener.json")
	return b
}

func loadValues(name string) (map[string]any, error) {
	b, err := files.ReadFile("values/" + name)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("values/%s: %w", name, err)
	}
	return v, nil
}

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }

// prometheusValues adds retention, storage class and Grafana's datasources
// (Loki and Tempo, linked both ways by trace id) to the base values.
func (a Args) prometheusValues() (map[string]any, error) {
	v, err := loadValues("kube-prometheus-stack.yaml")
	if err != nil {
		return nil, err
	}
	setPath(v, []string{"prometheus", "prometheusSpec", "retention"}, fmt.Sprintf("%dd", days(a.Retention)))
	setPath(v, []string{"grafana", "admin", "existingSecret"}, "grafana-admin")
	if a.StorageClass != "" {
		setPath(v, []string{"prometheus", "prometheusSpec", "storageSpec", "volumeClaimTemplate", "spec", "storageClassName"}, a.StorageClass)
		setPath(v, []string{"alertmanager", "alertmanagerSpec", "storage", "volumeClaimTemplate", "spec", "storageClassName"}, a.StorageClass)
	}
	for part, ref := range a.Images {
		at, ok := imageValues[part]
		if !ok {
			continue // not kube-prometheus-stack's (the collector's)
		}
		im, err := splitImage(ref)
		if err != nil {
			return nil, err
		}
		vals := map[string]any{"registry": im.registry, "repository": im.repository, "tag": im.tag}
		switch {
		case at.digest:
			vals["digest"] = im.digest
		case at.fullSHA:
			vals["sha"] = im.digest
		default:
			vals["sha"] = strings.TrimPrefix(im.digest, "sha256:")
		}
		setPath(v, at.path, vals)
		if part == "prometheus" && im.tag != "" {
			// The operator renders Prometheus's flags and config for this version.
			setPath(v, []string{"prometheus", "prometheusSpec", "version"}, im.tag)
		}
	}
	for part, path := range map[string][]string{
		"grafana": {"grafana", "enabled"}, "kubeStateMetrics": {"kubeStateMetrics", "enabled"}, "nodeExporter": {"nodeExporter", "enabled"},
		"admissionWebhooks": {"prometheusOperator", "admissionWebhooks", "enabled"},
	} {
		if a.off(part) {
			setPath(v, path, false)
		}
	}
	if a.off("admissionWebhooks") {
		// Without the webhook the operator serves plain HTTP (no certificate to mount).
		setPath(v, []string{"prometheusOperator", "tls", "enabled"}, false)
	}
	if a.off("grafana") {
		return v, nil
	}
	setPath(v, []string{"grafana", "additionalDataSources"}, []any{
		map[string]any{"name": "Loki", "uid": "loki", "type": "loki", "url": "http://loki:3100", "access": "proxy",
			"jsonData": map[string]any{"derivedFields": []any{map[string]any{
				"name": "trace_id", "matcherType": "label", "matcherRegex": "trace_id", "datasourceUid": "tempo", "url": "$${__value.raw}"}}}},
		map[string]any{"name": "Tempo", "uid": "tempo", "type": "tempo", "url": "http://tempo:3100", "access": "proxy",
			"jsonData": map[string]any{
				"tracesToLogsV2":  map[string]any{"datasourceUid": "loki", "filterByTraceID": true, "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m"},
				"tracesToMetrics": map[string]any{"datasourceUid": "prometheus"},
				"serviceMap":      map[string]any{"datasourceUid": "prometheus"},
				"nodeGraph":       map[string]any{"enabled": true},
			}},
	})
	return v, nil
}

func (a Args) off(part string) bool { return slices.Contains(a.Off, part) }

// runsLogAgent: the node log agent runs with the Collector, and only where
// Loki takes what it ships.
func (a Args) runsLogAgent() bool { return !a.off("collector") && !a.off("logAgent") && !a.off("loki") }

// collectorOverrides set the gateway Collector's image when
// liftoff:collectorImage names one. (The node log agent keeps the chart's
// image and configuration: contrib 0.104.0, whose settings 0.165 refuses.)
func (a Args) collectorOverrides(v map[string]any) {
	if ref, ok := a.Images["collector"]; ok {
		if im, err := splitImage(ref); err == nil { // validated in New
			setPath(v, []string{"image"}, map[string]any{"repository": im.registry + "/" + im.repository, "tag": im.tag, "digest": im.digest})
		}
	}
}

// CollectorConfigMap is the gateway Collector's configuration's ConfigMap
// (key relay), which its chart mounts.
const CollectorConfigMap = "otel-collector-config"

// collectorConfig is the gateway Collector's configuration
// (values/otel-collector-config.yaml): what a pipeline would hand a part
// that is left out (Tempo, Loki) goes to the debug exporter, which counts
// it and drops it, so the app's telemetry still reaches the Collector.
func (a Args) collectorConfig() (map[string]any, error) {
	v, err := loadValues("otel-collector-config.yaml")
	if err != nil {
		return nil, err
	}
	for part, sink := range map[string]struct{ pipeline, exporter string }{"tempo": {"traces", "otlp/tempo"}, "loki": {"logs", "otlphttp/loki"}} {
		pipeline, ok := getPath(v, "service", "pipelines", sink.pipeline).(map[string]any)
		if !a.off(part) || !ok {
			continue
		}
		if exps, _ := getPath(v, "exporters").(map[string]any); exps != nil {
			delete(exps, sink.exporter)
		}
		pipeline["exporters"] = []any{"debug"}
	}
	return v, nil
}

func (a Args) collectorConfigMap(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*corev1.ConfigMap, error) {
	cfg, err := a.collectorConfig()
	if err != nil {
		return nil, err
	}
	relay, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return corev1.NewConfigMap(ctx, name+"-otel-collector-config", &corev1.ConfigMapArgs{
		Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(CollectorConfigMap), Namespace: pulumi.String(a.Namespace)},
		Data:     pulumi.StringMap{"relay": pulumi.String(string(relay))},
	}, opts...)
}

// image is a reference in the parts kube-prometheus-stack's values take.
type image struct{ registry, repository, tag, digest string }

// splitImage splits host/path[:tag][@sha256:hex] (Docker Hub when the first
// part names no host, as docker does).
func splitImage(ref string) (image, error) {
	var im image
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		rest, im.digest = rest[:i], rest[i+1:]
		if !digestRE.MatchString(im.digest) {
			return im, fmt.Errorf("%q: the digest is not sha256: and 64 hex digits", ref)
		}
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		rest, im.tag = rest[:i], rest[i+1:]
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		host, path = "docker.io", rest
		if !strings.Contains(path, "/") {
			path = "library/" + path
		}
	}
	if path == "" || host == "" || (im.tag == "" && im.digest == "") {
		return im, fmt.Errorf("%q is not an image reference with a tag or a digest (registry/repository:tag or @sha256:...)", ref)
	}
	im.registry, im.repository = host, path
	return im, nil
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (a Args) lokiOverrides(v map[string]any) {
	setPath(v, []string{"loki", "limits_config", "retention_period"}, fmt.Sprintf("%dh", days(a.Retention)*24))
	if a.StorageClass != "" {
		setPath(v, []string{"singleBinary", "persistence", "storageClass"}, a.StorageClass)
	}
}

func (a Args) tempoOverrides(v map[string]any) {
	setPath(v, []string{"tempo", "retention"}, fmt.Sprintf("%dh", days(a.Retention)*24))
	if im, err := splitImage(a.Images["tempo"]); err == nil { // validated in New; the chart writes repository:tag
		tag := im.tag
		if im.digest != "" {
			tag += "@" + im.digest
		}
		setPath(v, []string{"tempo", "repository"}, im.registry+"/"+im.repository)
		setPath(v, []string{"tempo", "tag"}, tag)
	}
	if a.StorageClass != "" {
		setPath(v, []string{"persistence", "storageClassName"}, a.StorageClass)
	}
}

// WebhookKind tells what an alert destination is: slack, discord or email;
// "" for anything else (the config refuses it). See notify.Parse.
func WebhookKind(u string) string {
	d, err := notify.Parse(u)
	if err != nil {
		return ""
	}
	return d.Kind
}

// AlertmanagerConfig routes every alert to one receiver (email with the SMTP
// settings of its mailto: address).
func AlertmanagerConfig(d notify.Dest) (map[string]any, error) {
	recv := map[string]any{"name": "liftoff"}
	switch d.Kind {
	case notify.Slack:
		recv["slack_configs"] = []any{map[string]any{"api_url": d.URL, "send_resolved": true,
			"title": `{{ .CommonLabels.alertname }} ({{ .Status }})`, "text": `{{ range .Alerts }}{{ .Annotations.summary }} {{ .Annotations.runbook_url }}{{ with .Annotations.last_release }} (last release: {{ . }}){{ end }}{{ "\n" }}{{ end }}`}}
	case notify.Discord:
		recv["discord_configs"] = []any{map[string]any{"webhook_url": d.URL, "send_resolved": true}}
	case notify.Email:
		email := map[string]any{"to": d.To, "from": d.From, "smarthost": d.Smarthost, "send_resolved": true,
			// STARTTLS unless the relay is a plain one on a private network (require_tls=false).
			"require_tls": d.RequireTLS}
		if d.Username != "" {
			email["auth_username"], email["auth_password"] = d.Username, d.Password
		}
		recv["email_configs"] = []any{email}
	default:
		return nil, fmt.Errorf("alert webhook kind %q is not slack, discord or email", d.Kind)
	}
	return map[string]any{
		"route": map[string]any{"receiver": "liftoff", "group_by": []any{"alertname", "namespace"},
			"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
			"routes": []any{map[string]any{"receiver": "null", "matchers": []any{`alertname = "Watchdog"`}}}},
		"receivers": []any{recv, map[string]any{"name": "null"}},
	}, nil
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// getPath is what m holds at path (nil when nothing).
func getPath(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}
