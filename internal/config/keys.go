package config

import (
	"slices"
	"strconv"
	"strings"
)

// Namespace is the Pulumi config namespace of liftoff's own keys.
const Namespace = "liftoff"

// Key describes one config key: the single source for validation of unknown
// keys, the secret rule, `liftoff config` help and the config reference (docs/config.md).
type Key struct {
	Name    string       // full key, e.g. "liftoff:replicas"
	Targets []TargetName // targets that read it; nil means every target
	Type    string       // string, int, bool, duration, list, object, secret
	Default string
	Doc     string
	// Generated secrets are made by liftoff when a stack needs them (Generate).
	Generated bool
	// clusterServices keys are read by the targets whose spec has
	// ClusterServices (the registry and storage settings).
	clusterServices bool
}

// Secret reports whether the key must be stored with --secret.
func (k Key) Secret() bool { return k.Type == "secret" }

// AppliesTo reports whether target reads the key.
func (k Key) AppliesTo(t TargetName) bool { return k.Targets == nil || slices.Contains(k.Targets, t) }

// TargetList names the targets the key applies to ("homelab", "homelab or kubeconfig").
func (k Key) TargetList() string {
	names := make([]string, len(k.Targets))
	for i, t := range k.Targets {
		names[i] = string(t)
	}
	return strings.Join(names, " or ")
}

// Keys lists every key liftoff reads, in the config reference's order:
// the shared ones below, then each registered target's (RegisterTarget).
var Keys = []Key{
	// Every target.
	{Name: "liftoff:target", Type: "string", Doc: "Where the stack runs: one of the targets below. Set by `liftoff init`."},
	{Name: "liftoff:app", Type: "string", Default: DefaultApp, Doc: "Application name: Helm release prefix and Service name (DNS label, at most 40 characters)."},
	{Name: "liftoff:namespace", Type: "string", Default: "<app>, or <app>-<stack> for previews", Doc: "Kubernetes namespace of the application."},
	{Name: "liftoff:replicas", Type: "int", Default: strconv.Itoa(DefaultReplicas), Doc: "Replicas per slot (1-50)."},
	{Name: "liftoff:package", Type: "string", Default: DefaultPackage, Doc: "Go main package that `liftoff build` compiles into the image."},
	{Name: "liftoff:migrate", Type: "string", Default: "`shortener migrate` for the bundled app, else `off`", Doc: "The app's migration command in its image, run as a deploy phase before the new slot starts (its plan: the command with `--plan`); `off` leaves migrations to the app. See [data.md](data.md#migrations)."},
	{Name: "liftoff:image", Type: "string", Doc: "A prebuilt image to deploy instead of building (`repo@sha256:...` or `repo:tag`)."},
	{Name: "liftoff:domain", Type: "string", Doc: "Public host name of the application, e.g. `sho.rt`. Empty serves on the load balancer's name."},
	{Name: "liftoff:databaseUrl", Type: "secret", Doc: "PostgreSQL URL of an external database (`postgres://...`). Required when `liftoff:database` is `external`."},
	{Name: "liftoff:cacheUrl", Type: "secret", Doc: "Valkey/Redis URL of an external cache (`redis://...`). Required when `liftoff:cache` is `external`."},
	{Name: "liftoff:observability", Type: "bool", Default: "true", Doc: "Install Prometheus, Alertmanager, Grafana, Loki, Tempo and the OpenTelemetry Collector."},
	{Name: "liftoff:retention", Type: "duration", Default: "7d", Doc: "How long metrics, logs and traces are kept (1d-90d)."},
	{Name: "liftoff:alertWebhook", Type: "secret", Doc: "Where Alertmanager sends alerts: a Slack or Discord webhook URL, a Slack-compatible one as `slack+https://chat.example.com/hooks/...` (Mattermost, Rocket.Chat), or `mailto:ops@example.com?smarthost=smtp.example.com:587&from=alerts@example.com` (`&username=`, `&password=`, `&require_tls=false` for a relay without STARTTLS). Anything else is refused. Unset keeps alerts in the UI."},
	{Name: "liftoff:notify", Type: "secret", Doc: "Where every deploy, promote, rollback, secrets change and failed deploy is announced (app, stack, slot, release, who, how long, the bake, the cause, and the rollback command while the previous slot is warm). The same forms as `alertWebhook`. A notification that cannot be sent is reported, never fails the deploy. Unset: no announcements."},
	{Name: "liftoff:scaleDownDelay", Type: "duration", Default: "5m", Doc: "How long the previous slot keeps running after a flip, so rollback is instant (0s-24h)."},
	{Name: "liftoff:bake", Type: "duration", Default: "1m", Doc: "How long liftoff watches a new release's real traffic after the flip, reading its pods' metrics, and rolls it back on its own when it breaches `bakeMaxErrors` or `bakeMaxP99` (0s-1h; 0s turns the bake off). See [rollouts.md](rollouts.md)."},
	{Name: "liftoff:bakeMaxErrors", Type: "string", Default: "0.5%", Doc: "Share of 5xx answers above which the bake rolls a release back (the HighErrorRate alert's threshold)."},
	{Name: "liftoff:bakeMaxP99", Type: "duration", Default: "250ms", Doc: "p99 latency above which the bake rolls a release back (the HighLatencyP99 alert's threshold)."},
	{Name: "liftoff:bakeMinRequests", Type: "int", Default: "100", Doc: "Requests the new release must answer during the bake to be judged; with fewer, the bake says it could not judge instead of passing."},
	{Name: "liftoff:steps", Type: "string", Default: "off", Doc: "Move traffic to a new release in steps, each held and judged for `bake`: rising percentages ending at 100, like `10,50,100`. Each step's real share is a ratio of pods; see [rollouts.md](rollouts.md#gradual-shift)."},
	{Name: "liftoff:autoscale", Type: "string", Default: "off", Doc: "A HorizontalPodAutoscaler on the live slot, `MIN-MAX` replicas like `2-10` (MIN at least `replicas`). It follows the live slot across flips and rollbacks; a new slot starts with the live slot's current count. Needs the cluster's metrics API: k3s ships one; on kubeconfig and aws liftoff installs metrics-server where the cluster has none (`metricsServer`). See [rollouts.md](rollouts.md#replicas-across-a-flip)."},
	{Name: "liftoff:autoscaleCPU", Type: "int", Default: "70", Doc: "The autoscaler's target: average CPU use as a percentage of the pods' CPU request (10-100)."},
	{Name: "liftoff:autoscaleRPS", Type: "int", Default: "0", Doc: "A second target for the autoscaler: requests a second per pod (0: none). It reads the pods metric `shortener_http_requests_per_second` from the cluster's custom metrics API, which an adapter such as prometheus-adapter must serve (the rule is in [rollouts.md](rollouts.md#replicas-across-a-flip)); the autoscaler follows whichever target asks for more replicas. Without the adapter it never scales down."},
	{Name: "liftoff:previewOf", Type: "string", Doc: "Parent stack whose cluster, registry and observability this preview stack reuses."},
	{Name: "liftoff:previewKubeconfig", Type: "string", Doc: "A preview's own kubeconfig file for its parent's cluster (a user made for previews), used instead of the parent's credentials; its one context is kept in the preview's state, as a secret, for later runs elsewhere. `liftoff up --preview-of PARENT --kubeconfig FILE` sets it. See [previews.md](previews.md#the-previews-own-credentials)."},
	{Name: "liftoff:previewContext", Type: "string", Default: "the file's current context", Doc: "Context in `previewKubeconfig` (`liftoff up --context`)."},
	{Name: "liftoff:ttl", Type: "duration", Default: "72h", Doc: "Lifetime of a preview stack; `liftoff stacks gc` destroys it afterwards (1h-720h)."},
	{Name: "liftoff:previewDomain", Type: "string", Doc: "Wildcard DNS domain of this stack's previews: preview `pr-42` is served at `pr-42.<previewDomain>` through the cluster's ingress. Unset: previews are reached in the cluster or by port-forward."},
	{Name: "liftoff:maxPreviews", Type: "int", Default: "10", Doc: "Most preview stacks one parent may have at once (1-100)."},
	{Name: "liftoff:chartMirror", Type: "string", Doc: "Where the upstream Helm charts liftoff installs (observability, ingress, External Secrets) come from, for a cluster that cannot reach their public repositories: an HTTP Helm repository (`https://charts.example.com/liftoff`, its `index.yaml` there) or an OCI registry (`oci://registry.example.com/charts`, each chart at `<mirror>/<name>`). It must hold each chart at the version liftoff pins (docs/observability.md, Air-gapped clusters). Unset: the public repositories."},
	{Name: "liftoff:postgresImage", Type: "string", Default: "`postgres:16.9-bookworm` by digest", Doc: "Image of the in-cluster PostgreSQL, and of the database tools liftoff runs in the cluster for any database (backups, restores, drills): a mirror for air-gapped clusters; it must behave as the official image (`POSTGRES_*` variables, uid 999, `pg_dump`, `pg_restore`, `psql`)."},
	{Name: "liftoff:valkeyImage", Type: "string", Default: "`valkey/valkey:8.1.3-bookworm` by digest", Doc: "Image of the in-cluster Valkey; it must take `valkey-server` flags as arguments."},
	{Name: "liftoff:registryImage", Type: "string", Default: "`registry:2.8.3` by digest", Doc: "Image of the in-cluster registry; it must read the `REGISTRY_*` variables of CNCF distribution."},
	{Name: "liftoff:operatorImage", Type: "string", Default: "the chart's (`quay.io/prometheus-operator/prometheus-operator:v0.85.0`)", Doc: "Image of the Prometheus operator, for a mirror."},
	{Name: "liftoff:configReloaderImage", Type: "string", Default: "the chart's (`quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0`)", Doc: "Image of the operator's config reloader (run as `/bin/prometheus-config-reloader`), for a mirror."},
	{Name: "liftoff:prometheusImage", Type: "string", Default: "the chart's (`quay.io/prometheus/prometheus:v3.6.0`)", Doc: "Image of Prometheus, for a mirror. Its tag is the version the operator configures it for (`mirror.example.com/prometheus:v3.6.0@sha256:...`); without a tag, v3.6.0."},
	{Name: "liftoff:alertmanagerImage", Type: "string", Default: "the chart's (`quay.io/prometheus/alertmanager:v0.28.1`)", Doc: "Image of Alertmanager, for a mirror."},
	{Name: "liftoff:nodeExporterImage", Type: "string", Default: "the chart's (`quay.io/prometheus/node-exporter:v1.9.1`)", Doc: "Image of the node exporter, for a mirror."},
	{Name: "liftoff:grafanaImage", Type: "string", Default: "the chart's (`docker.io/grafana/grafana:12.1.1`)", Doc: "Image of Grafana, for a mirror (with a tag: the chart writes it beside a digest)."},
	{Name: "liftoff:grafanaSidecarImage", Type: "string", Default: "the chart's (`quay.io/kiwigrid/k8s-sidecar:1.30.10`)", Doc: "Image of Grafana's sidecar, which loads the dashboards and datasources, for a mirror (with a tag)."},
	{Name: "liftoff:kubeStateMetricsImage", Type: "string", Default: "the chart's (`registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.17.0`)", Doc: "Image of kube-state-metrics, for a mirror."},
	{Name: "liftoff:webhookCertgenImage", Type: "string", Default: "the chart's (`registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.3`)", Doc: "Image of the job that makes the operator's admission webhook certificate, for a mirror (with a tag)."},
	{Name: "liftoff:tempoImage", Type: "string", Default: "the chart's (`grafana/tempo:2.5.0`)", Doc: "Image of Tempo, for a mirror (with a tag: the chart writes repository:tag)."},
	{Name: "liftoff:collectorImage", Type: "string", Default: "`otel/opentelemetry-collector-contrib:0.165.0`", Doc: "Image of the OpenTelemetry Collector (the gateway the app sends OTLP to), for a mirror: contrib 0.165, or a distribution with the components liftoff configures (the OTLP receiver; batch and memory_limiter; the otlp, otlphttp, debug and prometheusremotewrite exporters; health_check) at its entrypoint. The node log agent keeps the chart's image (contrib 0.104.0)."},
	{Name: "liftoff:observabilityOff", Type: "list", Doc: "Parts of the monitoring stack left out, for a cluster that cannot run them (a mirror without their images): any of `grafana`, `loki`, `tempo`, `collector` (the OpenTelemetry Collector and the node log agent), `logAgent` (the node log agent alone), `kubeStateMetrics`, `nodeExporter`, `admissionWebhooks` (the operator's rule validation, whose certificate job has an image of its own). Prometheus, Alertmanager and the operator always run: the alerts need nothing else."},
	{Name: "liftoff:databasePassword", Type: "secret", Generated: true, Doc: "Password of the in-cluster PostgreSQL. Generated (32 letters and digits) by `liftoff init` or the first `up` that needs it."},
	{Name: "liftoff:cachePassword", Type: "secret", Generated: true, Doc: "Password of the in-cluster Valkey's user `app` (its default user is off). Generated like `databasePassword`."},
	{Name: "liftoff:appSecrets", Type: "secret", Doc: "The app's own environment variables, encrypted as one JSON object. Managed by `liftoff secrets set/unset/ls`, not by `config set`."},
	{Name: "liftoff:grafanaPassword", Type: "secret", Generated: true, Doc: "Grafana's admin password. Generated like `databasePassword`."},

	{Name: "liftoff:backupSchedule", Type: "string", Default: "`0 3 * * *` (`off` on previews)", Doc: "When the database's scheduled backup runs in the cluster (a cron schedule, or `off`): a dump into a volume, a restore drill, its metadata ([data.md](data.md))."},
	{Name: "liftoff:backupRetain", Type: "int", Default: "7", Doc: "How many scheduled backups the cluster keeps (1-365); older ones are deleted after each new one passes its drill."},
	{Name: "liftoff:backupVerify", Type: "bool", Default: "true", Doc: "Restore each scheduled backup into a scratch database and count its rows; a backup that fails the drill is not kept."},

	// Databases and caches; the registry and volumes of targets that run them in the cluster.
	{Name: "liftoff:database", Type: "string", Default: "the target's managed database, or in-cluster", Doc: "Database: `in-cluster` PostgreSQL, `external` (`liftoff:databaseUrl`), or a managed database the target offers."},
	{Name: "liftoff:cache", Type: "string", Default: "in-cluster", Doc: "Cache: `in-cluster` Valkey, `external` (`liftoff:cacheUrl`), `none`, or a managed cache the target offers."},
	{Name: "liftoff:registry", Targets: []TargetName{}, clusterServices: true, Type: "string", Doc: "Registry repository to push to, e.g. `ghcr.io/acme/shortener`. Unset runs an in-cluster registry."},
	{Name: "liftoff:insecureRegistry", Targets: []TargetName{}, clusterServices: true, Type: "bool", Default: "false", Doc: "Push over plain HTTP to a non-loopback registry."},
	{Name: "liftoff:registryPassword", Targets: []TargetName{}, clusterServices: true, Type: "secret", Generated: true, Doc: "Password of the in-cluster registry (user `liftoff`). Generated like `databasePassword`."},
	{Name: "liftoff:podCIDRs", Targets: []TargetName{}, clusterServices: true, Type: "list", Default: "homelab: 10.42.0.0/16 (k3s's default); kubeconfig: unset", Doc: "The cluster's pod ranges (`kubectl get nodes -o jsonpath='{..podCIDR}'`; on a homelab, k3s's `--cluster-cidr`). With them the NetworkPolicies admit, besides the pods they name, only what comes from outside them (nodes, the API server) to the app and the registry. Unset on kubeconfig: those two stay open to the cluster network (the databases' and cache's policies do not need it)."},
	{Name: "liftoff:storageClass", Targets: []TargetName{}, clusterServices: true, Type: "string", Doc: "StorageClass for volumes; unset uses the target's default, or the cluster's."},
}

// Lookup finds a key by its full name, or by its short name within the liftoff namespace.
func Lookup(name string) (Key, bool) {
	full := FullName(name)
	for _, k := range Keys {
		if k.Name == full {
			return k, true
		}
	}
	return Key{}, false
}

// OwnsNamespace reports whether liftoff reads keys of the config namespace
// ns ("liftoff", or a provider's such as "aws" when a target reads one of
// its keys): an unknown key there is a mistake, not someone else's setting.
func OwnsNamespace(ns string) bool {
	for _, k := range Keys {
		if strings.HasPrefix(k.Name, ns+":") {
			return true
		}
	}
	return false
}

// FullName adds the liftoff namespace to a short key name.
func FullName(name string) string {
	if strings.Contains(name, ":") {
		return name
	}
	return Namespace + ":" + name
}

// ShortName drops the liftoff namespace, for messages and `liftoff config` commands.
func ShortName(name string) string {
	return strings.TrimPrefix(name, Namespace+":")
}

// suggest returns the known key closest to name, for "did you mean" hints.
func suggest(name string) string {
	best, bestD := "", 4
	for _, k := range Keys {
		if d := distance(strings.ToLower(ShortName(name)), strings.ToLower(ShortName(k.Name))); d < bestD {
			best, bestD = k.Name, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
