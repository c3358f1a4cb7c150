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

var (
	onlyAWS        = []TargetName{AWS}
	onlyHomelab    = []TargetName{Homelab}
	onlyKubeconfig = []TargetName{Kubeconfig}
	clusterOwners  = []TargetName{Homelab, Kubeconfig}
)

// Keys lists every key liftoff reads, in the config reference's order.
var Keys = []Key{
	// Every target.
	{Name: "liftoff:target", Type: "string", Doc: "Where the stack runs: `aws`, `homelab` or `kubeconfig`. Set by `liftoff init`."},
	{Name: "liftoff:app", Type: "string", Default: DefaultApp, Doc: "Application name: Helm release prefix and Service name (DNS label, at most 40 characters)."},
	{Name: "liftoff:namespace", Type: "string", Default: "<app>, or <app>-<stack> for previews", Doc: "Kubernetes namespace of the application."},
	{Name: "liftoff:replicas", Type: "int", Default: strconv.Itoa(DefaultReplicas), Doc: "Replicas per slot (1-50)."},
	{Name: "liftoff:package", Type: "string", Default: DefaultPackage, Doc: "Go main package that `liftoff build` compiles into the image."},
	{Name: "liftoff:image", Type: "string", Doc: "A prebuilt image to deploy instead of building (`repo@sha256:...` or `repo:tag`)."},
	{Name: "liftoff:domain", Type: "string", Doc: "Public host name of the application, e.g. `sho.rt`. Empty serves on the load balancer's name."},
	{Name: "liftoff:databaseUrl", Type: "secret", Doc: "PostgreSQL URL of an external database (`postgres://...`). Required when `liftoff:database` is `external`."},
	{Name: "liftoff:cacheUrl", Type: "secret", Doc: "Valkey/Redis URL of an external cache (`redis://...`). Required when `liftoff:cache` is `external`."},
	{Name: "liftoff:observability", Type: "bool", Default: "true", Doc: "Install Prometheus, Alertmanager, Grafana, Loki, Tempo and the OpenTelemetry Collector."},
	{Name: "liftoff:retention", Type: "duration", Default: "7d", Doc: "How long metrics, logs and traces are kept (1d-90d)."},
	{Name: "liftoff:alertWebhook", Type: "secret", Doc: "Where Alertmanager sends alerts: a Slack or Discord webhook URL, or `mailto:ops@example.com?smarthost=smtp.example.com:587&from=alerts@example.com` (`&username=`, `&password=`, `&require_tls=false` for a relay without STARTTLS). Anything else is refused. Unset keeps alerts in the UI."},
	{Name: "liftoff:scaleDownDelay", Type: "duration", Default: "5m", Doc: "How long the previous slot keeps running after a flip, so rollback is instant (0s-24h)."},
	{Name: "liftoff:previewOf", Type: "string", Doc: "Parent stack whose cluster, registry and observability this preview stack reuses."},
	{Name: "liftoff:ttl", Type: "duration", Default: "72h", Doc: "Lifetime of a preview stack; `liftoff stacks gc` destroys it afterwards (1h-720h)."},
	{Name: "liftoff:previewDomain", Type: "string", Doc: "Wildcard DNS domain of this stack's previews: preview `pr-42` is served at `pr-42.<previewDomain>` through the cluster's ingress. Unset: previews are reached in the cluster or by port-forward."},
	{Name: "liftoff:maxPreviews", Type: "int", Default: "10", Doc: "Most preview stacks one parent may have at once (1-100)."},
	{Name: "liftoff:postgresImage", Type: "string", Default: "`postgres:16.9-bookworm` by digest", Doc: "Image of the in-cluster PostgreSQL (a mirror for air-gapped clusters); it must behave as the official image (`POSTGRES_*` variables, uid 999)."},
	{Name: "liftoff:valkeyImage", Type: "string", Default: "`valkey/valkey:8.1.3-bookworm` by digest", Doc: "Image of the in-cluster Valkey; it must take `valkey-server` flags as arguments."},
	{Name: "liftoff:registryImage", Type: "string", Default: "`registry:2.8.3` by digest", Doc: "Image of the in-cluster registry; it must read the `REGISTRY_*` variables of CNCF distribution."},
	{Name: "liftoff:databasePassword", Type: "secret", Generated: true, Doc: "Password of the in-cluster PostgreSQL. Generated (32 letters and digits) by `liftoff init` or the first `up` that needs it."},
	{Name: "liftoff:appSecrets", Type: "secret", Doc: "The app's own environment variables, encrypted as one JSON object. Managed by `liftoff secrets set/unset/ls`, not by `config set`."},
	{Name: "liftoff:grafanaPassword", Type: "secret", Generated: true, Doc: "Grafana's admin password. Generated like `databasePassword`."},

	// aws.
	{Name: "aws:region", Targets: onlyAWS, Type: "string", Doc: "AWS region, e.g. `eu-west-1`."},
	{Name: "liftoff:vpcCidr", Targets: onlyAWS, Type: "string", Default: "10.0.0.0/16", Doc: "VPC CIDR block (/16 to /20)."},
	{Name: "liftoff:azCount", Targets: onlyAWS, Type: "int", Default: "2", Doc: "Availability zones (2 or 3)."},
	{Name: "liftoff:nat", Targets: onlyAWS, Type: "string", Default: "single", Doc: "NAT gateways: `single`, `per-az` (HA), or `none` (dev: nodes in public subnets)."},
	{Name: "liftoff:eksVersion", Targets: onlyAWS, Type: "string", Default: DefaultEKSVersion, Doc: "EKS Kubernetes version (`1.N`)."},
	{Name: "liftoff:clusterLogTypes", Targets: onlyAWS, Type: "list", Default: `["api","audit","authenticator"]`, Doc: "Control-plane log types sent to CloudWatch: any of api, audit, authenticator, controllerManager, scheduler."},
	{Name: "liftoff:deployers", Targets: onlyAWS, Type: "list", Doc: "IAM principal ARNs given cluster-admin access entries, besides the identity running liftoff."},
	{Name: "liftoff:nodeCapacity", Targets: onlyAWS, Type: "string", Default: "spot", Doc: "Node capacity type: `spot` or `on-demand`."},
	{Name: "liftoff:nodeInstanceTypes", Targets: onlyAWS, Type: "list", Default: `["t3.large","t3a.large","m5.large","m5a.large","m6i.large"]`, Doc: "Instance types of the node group; spot needs at least " + strconv.Itoa(MinSpotInstanceTypes) + " for diversity."},
	{Name: "liftoff:nodeMin", Targets: onlyAWS, Type: "int", Default: "2", Doc: "Minimum nodes."},
	{Name: "liftoff:nodeDesired", Targets: onlyAWS, Type: "int", Default: "2", Doc: "Desired nodes at creation."},
	{Name: "liftoff:nodeMax", Targets: onlyAWS, Type: "int", Default: "5", Doc: "Maximum nodes."},
	{Name: "liftoff:nodeDiskGb", Targets: onlyAWS, Type: "int", Default: "40", Doc: "Root volume size of each node in GiB (20-1000)."},
	{Name: "liftoff:dbInstanceClass", Targets: onlyAWS, Type: "string", Default: "db.t4g.micro", Doc: "RDS instance class."},
	{Name: "liftoff:dbStorageGb", Targets: onlyAWS, Type: "int", Default: "20", Doc: "RDS storage in GiB (20-1000)."},
	{Name: "liftoff:dbBackupDays", Targets: onlyAWS, Type: "int", Default: "7", Doc: "RDS automated backup retention in days (1-35)."},
	{Name: "liftoff:cacheNodeType", Targets: onlyAWS, Type: "string", Default: "cache.t4g.micro", Doc: "ElastiCache node type when `liftoff:cache` is `elasticache`."},
	{Name: "liftoff:ecrKeepImages", Targets: onlyAWS, Type: "int", Default: "30", Doc: "Images ECR keeps; older ones expire (1-1000)."},
	{Name: "liftoff:certificateArn", Targets: onlyAWS, Type: "string", Doc: "ACM certificate ARN for TLS on the load balancer (requires `liftoff:domain`)."},

	// Targets that use a cluster they do not create.
	{Name: "liftoff:database", Type: "string", Default: "rds (aws), in-cluster (homelab, kubeconfig)", Doc: "Database: `rds` (aws), `in-cluster` PostgreSQL, or `external` (`liftoff:databaseUrl`)."},
	{Name: "liftoff:cache", Type: "string", Default: "in-cluster", Doc: "Cache: `in-cluster` Valkey, `elasticache` (aws), `external` (`liftoff:cacheUrl`) or `none`."},
	{Name: "liftoff:registry", Targets: clusterOwners, Type: "string", Doc: "Registry repository to push to, e.g. `ghcr.io/acme/shortener`. Unset runs an in-cluster registry."},
	{Name: "liftoff:insecureRegistry", Targets: clusterOwners, Type: "bool", Default: "false", Doc: "Push over plain HTTP to a non-loopback registry."},
	{Name: "liftoff:registryPassword", Targets: clusterOwners, Type: "secret", Generated: true, Doc: "Password of the in-cluster registry (user `liftoff`). Generated like `databasePassword`."},
	{Name: "liftoff:storageClass", Targets: clusterOwners, Type: "string", Doc: "StorageClass for volumes; unset uses the cluster default (`local-path` on homelab)."},

	// kubeconfig.
	{Name: "liftoff:kubeconfig", Targets: onlyKubeconfig, Type: "string", Default: "$KUBECONFIG or ~/.kube/config", Doc: "Path of the kubeconfig file."},
	{Name: "liftoff:context", Targets: onlyKubeconfig, Type: "string", Default: "the file's current context", Doc: "Context in the kubeconfig."},

	// homelab.
	{Name: "liftoff:nodes", Targets: onlyHomelab, Type: "object", Doc: "Hosts: a list of `{host, user, port, key, role, name}`; role is `server` or `agent`; 1 or 3+ (odd) servers."},
	{Name: "liftoff:k3sVersion", Targets: onlyHomelab, Type: "string", Default: DefaultK3sVersion, Doc: "k3s version to install (`v1.N.P+k3sM`)."},
	{Name: "liftoff:k3sChannel", Targets: onlyHomelab, Type: "string", Doc: "k3s release channel (`stable`, `latest`, `v1.33`) instead of a pinned version."},
	{Name: "liftoff:tlsSans", Targets: onlyHomelab, Type: "list", Doc: "Extra names and addresses in the API server certificate."},
	{Name: "liftoff:sudoPassword", Targets: onlyHomelab, Type: "secret", Doc: "sudo password on the hosts, when passwordless sudo is not set up."},
	{Name: "liftoff:k3sToken", Targets: onlyHomelab, Type: "secret", Generated: true, Doc: "Token that joins nodes to the k3s cluster. Generated like `databasePassword`."},
	{Name: "liftoff:knownHosts", Targets: onlyHomelab, Type: "string", Default: "~/.ssh/known_hosts", Doc: "known_hosts file that host keys are verified against."},
	{Name: "liftoff:acceptNewHostKeys", Targets: onlyHomelab, Type: "bool", Default: "false", Doc: "Trust unknown host keys on first use, then pin them in stack state."},
	{Name: "liftoff:airgapBinary", Targets: onlyHomelab, Type: "string", Doc: "Local path of the k3s binary to upload instead of downloading (air-gap)."},
	{Name: "liftoff:airgapImages", Targets: onlyHomelab, Type: "string", Doc: "Local path of the k3s airgap images tarball (air-gap)."},
	{Name: "liftoff:imageDelivery", Targets: onlyHomelab, Type: "string", Default: "registry", Doc: "How images reach the nodes: `registry` (in-cluster, default) or `import` (over SSH)."},
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
