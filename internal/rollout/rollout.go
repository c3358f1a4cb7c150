// Package rollout runs blue-green deployments over the Helm SDK and
// client-go: two releases, <app>-blue and <app>-green, and two Services owned
// by liftoff, <app> (live) and <app>-preview, whose selectors pick a slot.
// It follows kamal-proxy's DeployService: bring the new slot up, wait until it
// is healthy within a deadline, dispose of it if not while the old slot keeps
// serving, and only then flip; the old slot stays warm for instant rollback.
package rollout

import (
	"fmt"
	"io/fs"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/liftoff-dev/liftoff/charts"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// Slots.
const (
	Blue  = "blue"
	Green = "green"
)

// Labels and annotations liftoff reads and writes.
const (
	LabelApp        = outputs.LabelName
	LabelSlot       = "liftoff.dev/slot"
	LabelManagedBy  = outputs.LabelManagedBy
	AnnPrevious     = "liftoff.dev/previous-slot"
	AnnPromotedAt   = "liftoff.dev/promoted-at"
	AnnScaleDownAt  = "liftoff.dev/scale-down-at"
	AnnRollout      = "liftoff.dev/rollout"
	AnnHolder       = "liftoff.dev/holder"
	AnnDeployedFrom = "liftoff.dev/image"
)

// DefaultReadyTimeout is how long a new slot has to become ready.
const DefaultReadyTimeout = 5 * time.Minute

// Other returns the other slot.
func Other(slot string) string {
	if slot == Blue {
		return Green
	}
	return Blue
}

// AppRef is where an app is deployed.
type AppRef struct {
	Kubeconfig string
	Context    string
	Namespace  string
	App        string
	// NamespaceLabels and NamespaceAnnotations are set on the namespace on
	// every deploy (a preview's parent and expiry).
	NamespaceLabels      map[string]string
	NamespaceAnnotations map[string]string
}

// Reporter receives progress; *ui.Printer implements it.
type Reporter interface {
	Infof(format string, args ...any)
	Warnf(format string, args ...any)
	Waiting(what string)
}

// Client deploys one app in one namespace.
type Client struct {
	Ref  AppRef
	Kube kubernetes.Interface
	Rest *rest.Config
	Log  Reporter
	Now  func() time.Time
	// Self identifies this run in the deploy lock.
	Self lock.Holder

	helm  *action.Configuration
	chart *chart.Chart

	// Waits are fields so tests can shorten them.
	Poll              time.Duration // status polling interval (250ms)
	ReadyTimeout      time.Duration // a slot must be ready within this (5m)
	UnschedulableWait time.Duration // pods may stay unschedulable this long, e.g. for an autoscaler (30s)
	ScaleDownDelay    time.Duration // the old slot stays warm this long after a flip (5m)
	// Announce, when set, hears of each deploy, promote, rollback and
	// secrets change once its outcome is known (a team channel: notify).
	Announce      Announcer
	LeaseDuration time.Duration // the deploy lock expires this long after its last renewal (30s)
	LockWait      time.Duration // how long to queue behind another deploy (0: fail at once)
	Smoke         SmokeMode
}

// Connect is a client of the cluster t names, without Helm or the chart:
// for a look at the cluster before anything is deployed.
func Connect(t AppRef) (kubernetes.Interface, *rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if t.Kubeconfig != "" {
		rules.ExplicitPath = t.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: t.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, nil, failure.New(failure.Config, fmt.Errorf("kubeconfig %s (context %q): %w", t.Kubeconfig, t.Context, err),
			"point --kubeconfig/--context (or liftoff:kubeconfig, liftoff:context) at a reachable cluster")
	}
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return kube, cfg, nil
}

// New connects to the target's cluster and loads the embedded chart.
func New(t AppRef, log Reporter, self lock.Holder) (*Client, error) {
	if err := validTarget(t); err != nil {
		return nil, err
	}
	kube, cfg, err := Connect(t)
	if err != nil {
		return nil, err
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Context, flags.Namespace = &t.Kubeconfig, &t.Context, &t.Namespace
	hc := new(action.Configuration)
	if err := hc.Init(flags, t.Namespace, "secret", func(string, ...any) {}); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	ch, err := LoadChart()
	if err != nil {
		return nil, err
	}
	return &Client{Ref: t, Kube: kube, Rest: cfg, Log: log, Now: time.Now, Self: self, helm: hc, chart: ch,
		Poll: 250 * time.Millisecond, ReadyTimeout: DefaultReadyTimeout, UnschedulableWait: 30 * time.Second,
		ScaleDownDelay: 5 * time.Minute, LeaseDuration: 30 * time.Second, Smoke: SmokeAuto}, nil
}

func validTarget(t AppRef) error {
	for k, v := range map[string]string{"namespace": t.Namespace, "app": t.App} {
		if v == "" || len(v) > 63 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || strings.HasPrefix(v, "-") || strings.HasSuffix(v, "-") {
			return failure.Newf(failure.Config, "use a lower-case DNS label, e.g. shortener", "%s %q is not a valid name", k, v)
		}
	}
	if len(t.App) > 40 {
		return failure.Newf(failure.Config, "use an app name of at most 40 characters", "app %q is too long", t.App)
	}
	return nil
}

// LoadChart loads the embedded shortener chart.
func LoadChart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(charts.Shortener, "shortener", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := charts.Shortener.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, "shortener/"), Data: b})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return loader.LoadFiles(files)
}

// Helm exposes the Helm configuration, for status and tests.
func (e *Client) Helm() *action.Configuration { return e.helm }

// Release is the Helm release name of a slot.
func (e *Client) Release(slot string) string { return e.Ref.App + "-" + slot }

// StableService carries live traffic.
func (e *Client) StableService() string { return e.Ref.App }

// PreviewService reaches the slot being rolled out.
func (e *Client) PreviewService() string { return e.Ref.App + "-preview" }

func (e *Client) leaseName() string { return e.Ref.App + "-deploy" }
