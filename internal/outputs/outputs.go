// Package outputs is the contract between liftoff's Pulumi programs
// (stacks/...) and the phases that read what they recorded: every stack
// output key, the decoded form liftoff acts on, and the names and tags both
// sides must agree on. It is a leaf: it imports nothing of liftoff.
package outputs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Stack output keys. A program writes them with ctx.Export; liftoff reads
// them back from the stack (Decode).
const (
	Target    = "target"
	App       = "app"
	Namespace = "namespace"
	PreviewOf = "previewOf"

	// The cluster: a kubeconfig file (kubeconfig target) or its content
	// (clusters the program creates), and the context to use.
	Kubeconfig        = "kubeconfig"
	KubeconfigContent = "kubeconfigContent"
	Context           = "context"

	// Where the image goes and how the nodes pull it.
	Registry            = "registry"
	RegistryInsecure    = "registryInsecure"
	RegistryUsername    = "registryUsername"
	RegistryPassword    = "registryPassword"
	RegistryPortForward = "registryPortForward"
	ImagePullSecret     = "imagePullSecret"

	// The app's Secret (DATABASE_URL, CACHE_URL); managed when the
	// program writes it itself (otherwise liftoff does, from the config).
	AppSecretName    = "appSecretName"
	AppSecretManaged = "appSecretManaged"

	OTLPEndpoint  = "otlpEndpoint"
	URL           = "url"
	StorageClass  = "storageClass"
	IngressClass  = "ingressClass"
	PreviewDomain = "previewDomain"
	Database      = "database"
	Cache         = "cache"

	// The cluster's network as the NetworkPolicies know it (config.Network),
	// each a comma-separated list; the deploy phase writes the app's policy
	// from them, a preview's program its data services' policies.
	PodCIDRs          = "podCIDRs"
	HostCIDRs         = "hostCIDRs"
	IngressNamespaces = "ingressNamespaces"

	// The cloud side of a stack that makes its own cluster (aws).
	Region      = "region"
	ClusterName = "clusterName"

	// Observability: "name.namespace.svc:port" addresses, and the password.
	Grafana              = "grafana"
	Prometheus           = "prometheus"
	Alertmanager         = "alertmanager"
	GrafanaAdminPassword = "grafanaAdminPassword"
)

// PreviewInherits are the parent's outputs a preview passes on as its
// own: how to reach the cluster and the registry, and where the dashboards
// are.
var PreviewInherits = []string{Kubeconfig, KubeconfigContent, Context, Registry, RegistryInsecure, RegistryPortForward,
	RegistryUsername, RegistryPassword, OTLPEndpoint, Grafana, Prometheus, Alertmanager, Region, ClusterName,
	PodCIDRs, HostCIDRs, IngressNamespaces}

// PreviewReads are the parent's outputs a preview reads: what it inherits,
// and what shapes its own resources.
var PreviewReads = append([]string{Target, StorageClass, PreviewDomain, IngressClass, URL}, PreviewInherits...)

// Dashboards are the observability outputs `status` and `open` reach.
var Dashboards = []string{Grafana, Prometheus, Alertmanager}

// Tags every cloud resource carries; the aws sweep finds leftovers by them.
const (
	TagProject = "liftoff:project"
	TagStack   = "liftoff:stack"
)

// Labels on the Kubernetes objects liftoff makes, read back by the phases.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "liftoff"
	// LabelPreviewOf is on a preview's namespace: its parent stack.
	LabelPreviewOf = "liftoff.dev/preview-of"
	// LabelProject and LabelStack are on every namespace a stack makes:
	// its owner. up adopts no namespace of another owner; destroy deletes
	// only its own.
	LabelProject = "liftoff.dev/project"
	LabelStack   = "liftoff.dev/stack"
)

// DatabaseLogin is the role the app logs in to the in-cluster PostgreSQL
// as, for its password: one role per password, so a new password is a new
// login beside the old one, and the old slot keeps its own until it stops
// (a rotation without a failed request). Every login acts as DatabaseOwner.
func DatabaseLogin(password string) string {
	h := sha256.Sum256([]byte("liftoff-login:" + password))
	return "app_" + hex.EncodeToString(h[:4])
}

// DatabaseOwner owns the app's database and every object in it; it cannot
// log in, and is no superuser.
const DatabaseOwner = "app_owner"

// ClientLabel is the label ("true") of the pods a data service admits:
// the app's, and liftoff's migration, backup and tools pods.
func ClientLabel(service string) string { return "liftoff.dev/" + service + "-client" }

// RegistryNodePort is the node port of the in-cluster registry: every
// node reaches it at localhost:30500, so one cluster has one.
const RegistryNodePort = 30500

// OwnerLabels are the labels that mark an object as project/stack's.
func OwnerLabels(project, stack string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelProject: project, LabelStack: stack}
}

// Owner names who owns an object by its labels: "project/stack", "" when
// they name no stack.
func Owner(labels map[string]string) string {
	if labels[LabelStack] == "" {
		return ""
	}
	return labels[LabelProject] + "/" + labels[LabelStack]
}

// EnvSecret is the app's Secret holding DATABASE_URL and CACHE_URL.
func EnvSecret(app string) string { return app + "-env" }

// Record is what the programs record about where the app goes.
type Record struct {
	Kubeconfig          string
	KubeconfigContent   string
	HasKubeconfig       bool // KubeconfigContent was recorded (it may be empty)
	Context             string
	Namespace           string
	Registry            string
	RegistryInsecure    bool
	RegistryUsername    string
	RegistryPassword    string
	RegistryPortForward string
	ImagePullSecret     string
	AppSecretName       string
	AppSecretManaged    bool
	OTLPEndpoint        string
	URL                 string
	Target              string
	App                 string
	Region              string
	PodCIDRs            []string
	HostCIDRs           []string
	IngressNamespaces   []string
}

// Decode reads the record from a stack's output values (plain values:
// secrets already revealed by the engine).
func Decode(values map[string]any) Record {
	str := func(k string) string {
		if v, ok := values[k]; ok && v != nil {
			if s, ok := v.(string); ok {
				return s
			}
			return fmt.Sprint(v)
		}
		return ""
	}
	boolean := func(k string) bool { b, _ := values[k].(bool); return b }
	list := func(k string) []string {
		var out []string
		for _, v := range strings.Split(str(k), ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
		return out
	}
	_, hasKC := values[KubeconfigContent]
	return Record{
		Kubeconfig: str(Kubeconfig), KubeconfigContent: str(KubeconfigContent), HasKubeconfig: hasKC, Context: str(Context),
		Namespace: str(Namespace), Registry: str(Registry), RegistryInsecure: boolean(RegistryInsecure),
		RegistryUsername: str(RegistryUsername), RegistryPassword: str(RegistryPassword), RegistryPortForward: str(RegistryPortForward),
		ImagePullSecret: str(ImagePullSecret), AppSecretName: str(AppSecretName), AppSecretManaged: boolean(AppSecretManaged),
		OTLPEndpoint: str(OTLPEndpoint), URL: str(URL), Target: str(Target), App: str(App), Region: str(Region),
		PodCIDRs: list(PodCIDRs), HostCIDRs: list(HostCIDRs), IngressNamespaces: list(IngressNamespaces),
	}
}
