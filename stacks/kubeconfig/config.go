package kubeconfig

import (
	"github.com/liftoff-dev/liftoff/components/metricsserver"
	"github.com/liftoff-dev/liftoff/internal/config"
)

// Name is the target's liftoff:target value.
const Name config.TargetName = "kubeconfig"

// Spec is what the config learns about the kubeconfig target: the file and
// context it reaches the cluster with; the registry and volumes run in that
// cluster. It is the target init offers first.
var Spec = config.TargetSpec{
	Name:            Name,
	Summary:         "any cluster you already have, through a kubeconfig",
	Default:         true,
	ClusterServices: true,
	Parse:           parse,
	Keys: append([]config.Key{
		{Name: "liftoff:kubeconfig", Type: "string", Default: "$KUBECONFIG or ~/.kube/config", Doc: "Path of the kubeconfig file."},
		{Name: "liftoff:context", Type: "string", Default: "the file's current context", Doc: "Context in the kubeconfig."},
		{Name: "liftoff:ingressNamespaces", Type: "list", Doc: "Namespaces of the cluster's ingress controller: with them, only they (and the app's own namespace) reach the app's port. Unset: every namespace does."},
	}, metricsserver.Keys...),
}

// Config is the kubeconfig target's own settings (config.Stack.Section).
type Config struct {
	Path          string
	Context       string
	MetricsServer metricsserver.Settings
}

func parse(r *config.Reader, s *config.Stack) any {
	s.Network = config.Network{PodCIDRs: r.List("liftoff:podCIDRs", nil, config.AnyCIDR), IngressNamespaces: r.List("liftoff:ingressNamespaces", nil, config.NamespaceName)}
	return &Config{
		Path:          r.Str("liftoff:kubeconfig", "", config.NonEmpty),
		Context:       r.Str("liftoff:context", "", nil),
		MetricsServer: metricsserver.Parse(r),
	}
}

// settings is the kubeconfig section of a parsed config.
func settings(cfg *config.Stack) *Config {
	c, _ := cfg.Section.(*Config)
	if c == nil {
		return &Config{}
	}
	return c
}
