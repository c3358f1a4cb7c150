// Package config is liftoff's typed stack configuration: which keys each
// target reads, their defaults, and validation whose every error names the
// key, the bad value and the fix. It reads Pulumi.<stack>.yaml directly, so
// config is checked before any engine call. Targets register their own keys
// and parsing (RegisterTarget); the config names none of them.
package config

import (
	"net/netip"
	"time"
)

// The app's defaults, the one place they are written.
const (
	DefaultApp      = "shortener"
	DefaultPackage  = "./app/cmd/shortener"
	DefaultReplicas = 2
	// DefaultBackupSchedule is when the database's scheduled backup runs:
	// every day at 03:00 in the cluster's time zone (UTC on most).
	DefaultBackupSchedule = "0 3 * * *"
	// DefaultMigrate is the bundled app's migration command.
	DefaultMigrate = "shortener migrate"
)

// The official upstream images of what liftoff runs in a cluster, pinned by
// the digest of their multi-platform index; liftoff:postgresImage,
// liftoff:valkeyImage and liftoff:registryImage replace them (mirrors,
// air-gapped clusters).
const (
	DefaultPostgresImage = "postgres:16.9-bookworm@sha256:253815cf7579ffa05e1673d92e78d37273e61be0e4414e9a1449337d7925be94"
	DefaultValkeyImage   = "valkey/valkey:8.1.3-bookworm@sha256:fea8b3e67b15729d4bb70589eb03367bab9ad1ee89c876f54327fc7c6e618571"
	DefaultRegistryImage = "registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373"
)

// Stack is one stack's validated configuration.
type Stack struct {
	Name   string
	Target TargetName

	App            App
	Database       Store
	Cache          Store
	Backup         Backup
	Observability  Observability
	ScaleDownDelay time.Duration
	// Rollout is how a release is judged by its real traffic after the flip.
	Rollout Rollout
	// Notify is the team channel told of every deploy, promote, rollback
	// and secrets change (notify.Parse's forms).
	Notify Secret
	// Preview is set on preview stacks.
	Preview *Preview
	// MaxPreviews is how many previews this stack may have at once;
	// PreviewDomain is the wildcard domain they are served under.
	MaxPreviews   int
	PreviewDomain string

	// Registry and StorageClass apply to targets with ClusterServices.
	Registry     Registry
	StorageClass string
	// Images are what runs in the cluster besides the app; ChartMirror is
	// where the upstream Helm charts come from ("" for their public
	// repositories).
	Images      Images
	ChartMirror string
	// Network is what the NetworkPolicies know of the cluster's network;
	// the target's Parse fills it.
	Network Network

	// Section is the target's own settings, as its spec's Parse made them
	// (nil for a preview, and for a target without settings of its own);
	// only the target's package reads it.
	Section any
}

// Network is what liftoff's NetworkPolicies admit beyond the pods they
// name. Unknown parts leave a policy as open as it was without them (never
// closed on a guess): a deploy must not break on a cluster liftoff cannot see.
type Network struct {
	// PodCIDRs are the cluster's pod ranges: sources outside them are
	// nodes, the API server and load balancers, admitted to the app and
	// the registry; empty when unknown.
	PodCIDRs []string
	// HostCIDRs, when the pod ranges cannot be told apart from the nodes'
	// (aws's VPC CNI), are the ranges the nodes and the API server are in.
	HostCIDRs []string
	// IngressNamespaces hold the ingress controller, the only other
	// namespaces that reach the app's port; empty when unknown (then every
	// namespace does).
	IngressNamespaces []string
}

// App is the shipped application.
type App struct {
	Name      string
	Namespace string
	Replicas  int
	Package   string
	Image     string
	Domain    string
	// Secrets are the app's own environment variables (liftoff secrets).
	Secrets Secret
	// Migrate is the app's migration command in its image (nil: the app
	// migrates itself at start); its plan is Migrate plus --plan.
	Migrate []string
}

// Rollout is how a deploy moves traffic and judges the new release by it.
type Rollout struct {
	// Bake is how long the new slot's real traffic is watched after the
	// flip (and at each step); 0 turns the bake off.
	Bake time.Duration
	// MaxErrorRatio (a share, 0.005 for 0.5%) and MaxP99 are the limits
	// that roll a release back; MinRequests the traffic needed to judge.
	MaxErrorRatio float64
	MaxP99        time.Duration
	MinRequests   int
	// Steps are the shares of traffic a deploy moves in (nil: all at once).
	Steps []int
	// AutoscaleMin and AutoscaleMax bound the autoscaler on the live slot
	// (AutoscaleMax 0: none); AutoscaleCPU is its CPU target in percent,
	// AutoscaleRPS its requests-a-second-per-pod target (0: none).
	AutoscaleMin, AutoscaleMax, AutoscaleCPU, AutoscaleRPS int
}

// Store is a database or cache choice.
type Store struct {
	Mode string // in-cluster, external, none, or a managed service its target offers
	URL  Secret // set when Mode is external
	// Password is the in-cluster database's or cache's, generated by liftoff.
	Password Secret
}

// Backup is the database's scheduled backups, taken in the cluster.
type Backup struct {
	// Schedule is a cron expression ("" when they are off).
	Schedule string
	// Retain is how many scheduled backups are kept.
	Retain int
	// Verify restores each into a scratch database as a drill.
	Verify bool
}

// Observability is the monitoring stack's configuration.
type Observability struct {
	Enabled      bool
	Retention    time.Duration
	AlertWebhook Secret
	// GrafanaPassword is Grafana's admin password, generated by liftoff.
	GrafanaPassword Secret
	// Images replace the charts' images, by part (MonitoringImages's
	// keys); a part not named keeps the chart's.
	Images map[string]string
	// Off are the parts left out (ObservabilityParts).
	Off []string
}

// MonitoringImages are the monitoring stack's image keys, by part.
var MonitoringImages = map[string]string{
	"operator": "liftoff:operatorImage", "configReloader": "liftoff:configReloaderImage", "prometheus": "liftoff:prometheusImage",
	"alertmanager": "liftoff:alertmanagerImage", "nodeExporter": "liftoff:nodeExporterImage", "collector": "liftoff:collectorImage",
	"grafana": "liftoff:grafanaImage", "grafanaSidecar": "liftoff:grafanaSidecarImage", "kubeStateMetrics": "liftoff:kubeStateMetricsImage",
	"webhookCertgen": "liftoff:webhookCertgenImage", "tempo": "liftoff:tempoImage",
}

// ObservabilityParts are what liftoff:observabilityOff may leave out.
var ObservabilityParts = []string{"grafana", "loki", "tempo", "collector", "logAgent", "kubeStateMetrics", "nodeExporter", "admissionWebhooks"}

// Images are the in-cluster components' images.
type Images struct {
	Postgres, Valkey, Registry string
}

// Preview marks a stack as a preview of a parent stack, whose cluster,
// registry and observability it uses.
type Preview struct {
	Of  string
	TTL time.Duration
	// Kubeconfig and Context are the preview's own access to its parent's
	// cluster (liftoff:previewKubeconfig, liftoff:previewContext): when
	// set, the parent's cluster credentials are not used.
	Kubeconfig string
	Context    string
}

// Registry is where images are pushed; an empty Repository means in-cluster.
type Registry struct {
	Repository string
	Insecure   bool
	// Password is the in-cluster registry's, generated by liftoff.
	Password Secret
}

// Value is one config value as stored.
type Value struct {
	// Text is the value: plain text, or JSON for lists and objects. It is empty
	// for a secret read from the stack file, whose ciphertext only the engine opens.
	Text   string
	Secret bool
	// Known is false for a secret whose plaintext is not available.
	Known bool
}

// Values maps full key names ("liftoff:replicas") to values.
type Values map[string]Value

// Plain returns a known, non-secret value.
func Plain(s string) Value { return Value{Text: s, Known: true} }

// SecretValue returns a known secret value.
func SecretValue(s string) Value { return Value{Text: s, Secret: true, Known: true} }

// Block is an address range, less some ranges inside it.
type Block struct {
	CIDR   string
	Except []string
}

// HostBlocks are the sources that are not pods: everything outside the
// pod ranges, or the host ranges given when pods and nodes share them
// (aws). Nil when neither is known.
func (n Network) HostBlocks() []Block {
	podCIDRs, hostCIDRs := n.PodCIDRs, n.HostCIDRs
	var out []Block
	for _, c := range hostCIDRs {
		out = append(out, Block{CIDR: c})
	}
	if len(podCIDRs) == 0 {
		return out
	}
	var v4, v6 []string
	for _, c := range podCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
			v4 = append(v4, c)
		} else {
			v6 = append(v6, c)
		}
	}
	out = append(out, Block{CIDR: "0.0.0.0/0", Except: v4})
	if len(v6) > 0 {
		out = append(out, Block{CIDR: "::/0", Except: v6})
	}
	return out
}
