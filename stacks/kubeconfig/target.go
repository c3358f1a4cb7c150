package kubeconfig

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-dev/liftoff/components/metricsserver"
	"github.com/liftoff-dev/liftoff/components/observability"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/remote"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks/incluster"
)

// Target is the kubeconfig target: a cluster the user already has, shared
// with whatever else runs there, so teardown touches only liftoff's own
// namespaces.
type Target struct{ target.Base }

func (Target) Name() string { return string(Name) }

// Config is the kubeconfig settings' spec.
func (Target) Config() config.TargetSpec { return Spec }

// Flags: init asks for the file and context.
func (Target) Flags() []target.Flag {
	return []target.Flag{
		{Command: target.CommandInit, Name: "kubeconfig", Usage: "kubeconfig file (default $KUBECONFIG or ~/.kube/config)"},
		{Command: target.CommandInit, Name: "context", Usage: "context in the file (default: its current context)"},
	}
}

func (Target) Program(ctx *pulumi.Context, cfg *config.Stack, facts target.Facts) error {
	return Program(ctx, cfg, facts)
}

// Plugins: the Kubernetes provider only when the config runs something in the cluster.
func (Target) Plugins(cfg *config.Stack) []engine.Plugin {
	if NeedsProvider(cfg) {
		return []engine.Plugin{incluster.KubernetesPlugin}
	}
	return nil
}

func (Target) Cluster(cfg *config.Stack) (string, string) {
	c := settings(cfg)
	return c.Path, c.Context
}

// SweepNamespaces: the app's, and the stack's own observability namespace.
func (Target) SweepNamespaces(cfg *config.Stack, appNamespace string) []string {
	if cfg.Observability.Enabled {
		return []string{appNamespace, observability.DefaultNamespace}
	}
	return []string{appNamespace}
}

// InitValues asks for the kubeconfig file (default the first of
// $KUBECONFIG, or ~/.kube/config), stored as an absolute path.
func (Target) InitValues(in target.InitInput) (config.Values, error) {
	path := in.Flags.Get("kubeconfig")
	if path == "" {
		var err error
		if path, err = in.Ask("kubeconfig file", defaultKubeconfig(in.Getenv)); err != nil {
			return nil, err
		}
	}
	if abs, err := filepath.Abs(remote.ExpandHome(path)); err == nil {
		path = abs
	}
	context := in.Flags.Get("context")
	if err := checkFile(path, context); err != nil {
		return nil, err
	}
	vals := config.Values{"liftoff:kubeconfig": config.Plain(path)}
	if context != "" {
		vals["liftoff:context"] = config.Plain(context)
	}
	return vals, nil
}

// checkFile: the kubeconfig file exists and parses, and has the context
// (or a current context when none is named). Whether the cluster answers,
// and lets this user make what up makes, up checks before it changes
// anything.
func checkFile(path, context string) error {
	cfg, err := clientcmd.LoadFromFile(path)
	switch {
	case os.IsNotExist(err):
		return failure.Newf(failure.Config, "pass --kubeconfig the file of your cluster (kubectl config view --minify shows what kubectl uses)", "kubeconfig %s does not exist", path)
	case err != nil:
		return failure.New(failure.Config, fmt.Errorf("kubeconfig %s: %w", path, err), "pass --kubeconfig a valid kubeconfig file")
	}
	names := slices.Sorted(maps.Keys(cfg.Contexts))
	switch {
	case context == "" && cfg.CurrentContext == "":
		return failure.Newf(failure.Config, "pass --context, one of: "+strings.Join(names, ", "), "kubeconfig %s has no current context", path)
	case context != "" && cfg.Contexts[context] == nil:
		return failure.Newf(failure.Config, "pass --context one of: "+strings.Join(names, ", "), "kubeconfig %s has no context %q", path, context)
	}
	return nil
}

// TeardownValues: the cluster the program recorded.
func (Target) TeardownValues(rec outputs.Record) config.Values {
	return config.Values{"liftoff:kubeconfig": config.Plain(rec.Kubeconfig), "liftoff:context": config.Plain(rec.Context)}
}

func defaultKubeconfig(getenv func(string) string) string {
	if k := getenv("KUBECONFIG"); k != "" {
		return strings.Split(k, string(os.PathListSeparator))[0]
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".kube", "config")
}

// PreflightOnlyReads: Preflight asks the API server one question.
func (Target) PreflightOnlyReads() {}

// Preflight: when the stack autoscales, whether the cluster already serves
// the metrics API the autoscaler reads (from anything but this stack's own
// metrics-server): if not, the program installs metrics-server.
func (Target) Preflight(ctx context.Context, in target.PreflightInput) (target.Facts, error) {
	if !wantsMetricsServer(in.Config) {
		return target.Facts{}, nil
	}
	c := settings(in.Config)
	rest, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: c.Path},
		&clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	if err != nil {
		return target.Facts{}, failure.New(failure.Config, fmt.Errorf("kubeconfig %s: %w", c.Path, err), "pass --kubeconfig a valid kubeconfig file")
	}
	kube, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return target.Facts{}, err
	}
	owner, found, err := apiServiceOwner(ctx, kube, metricsserver.APIService)
	if apierrors.IsForbidden(err) {
		return target.Facts{}, failure.Newf(failure.Config, "have the cluster's admin install metrics-server, then: liftoff config set metricsServer off",
			"the autoscaler needs the cluster's metrics API, and this user may not read APIService %s to find out whether it has one: nothing was changed", metricsserver.APIService)
	}
	if err != nil {
		return target.Facts{}, fmt.Errorf("look for the cluster's metrics API (APIService %s): %w", metricsserver.APIService, err)
	}
	me := in.Project + "/" + in.Config.Name
	switch {
	case !found:
		in.Log.Infof("the cluster has no metrics API: up installs metrics-server for the autoscaler (liftoff:metricsServer off to leave it out)")
		return target.Facts{MetricsServer: true}, nil
	case owner == me:
		return target.Facts{MetricsServer: true}, nil
	case owner != "":
		in.Log.Infof("the cluster's metrics API is stack %s's metrics-server: the autoscaler reads it (it goes when that stack is destroyed)", owner)
	}
	return target.Facts{}, nil
}

// apiServiceOwner reads an APIService's owner label (outputs.Owner), and
// whether it exists at all.
func apiServiceOwner(ctx context.Context, kube kubernetes.Interface, name string) (string, bool, error) {
	b, err := kube.Discovery().RESTClient().Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices", name).DoRaw(ctx)
	if apierrors.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var svc struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &svc); err != nil {
		return "", false, err
	}
	return outputs.Owner(svc.Metadata.Labels), true, nil
}
