package launch

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/internal/atomicfile"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// Site is where the app goes: cluster, namespace, registry and secrets.
type Site struct {
	Kubeconfig string
	Context    string
	Namespace  string
	App        string
	Registry   string
	Insecure   bool
	Replicas   int
	// SecretName is the Secret the pods read; SecretData, when set, is written to it.
	SecretName string
	SecretData map[string]string
	// AppSecrets are the app's own variables (liftoff secrets), from the stack config.
	AppSecrets       map[string]string
	OTLPEndpoint     string
	ImagePullSecrets []string
	ScaleDownDelay   time.Duration
	// Stack names the stack in announcements; Notify is where they go
	// (liftoff:notify, "" for none).
	Stack, Notify string
	// Bake judges each release by its real traffic after the flip; Steps
	// move traffic to it gradually.
	Bake      rollout.BakeOptions
	Steps     []int
	Autoscale rollout.Autoscale
	// RegistryUsername and RegistryPassword authenticate pushes (an in-cluster registry).
	RegistryUsername string
	RegistryPassword string
	// RegistryPortForward ("namespace/service:port") pushes through a
	// port-forward to a registry only the cluster's nodes can reach.
	RegistryPortForward string
	// URL is where users reach the app, when the stack knows it.
	URL string
	// NamespaceLabels and NamespaceAnnotations go on the app's namespace (a preview's parent and expiry).
	NamespaceLabels      map[string]string
	NamespaceAnnotations map[string]string
	// Network is what the app's NetworkPolicy admits beyond its namespace.
	Network config.Network
}

// Client connects a rollout client to the site.
func (t Site) Client(d Deps, self lock.Holder) (*rollout.Client, error) {
	e, err := rollout.New(rollout.AppRef{Kubeconfig: t.Kubeconfig, Context: t.Context, Namespace: t.Namespace, App: t.App,
		NamespaceLabels: t.NamespaceLabels, NamespaceAnnotations: t.NamespaceAnnotations}, d.Printer, self)
	if err != nil {
		return nil, err
	}
	e.ScaleDownDelay = t.ScaleDownDelay // 0 parks the old slot at once
	e.Now = d.Now
	if t.Notify != "" {
		dest, err := notify.Parse(t.Notify)
		if err != nil { // liftoff config set refuses it; the plain pulumi CLI does not
			return nil, failure.New(failure.Config, fmt.Errorf("liftoff:notify %w", err), "liftoff config set --secret notify "+notify.Example)
		}
		e.Announce = announcer(notify.Sender{Dest: dest}, t.Stack, t.App, d.Printer)
	}
	return e, nil
}

// rolloutOptions completes o with where the site keeps the app's settings
// and secrets.
func (t Site) rolloutOptions(o rollout.DeployOptions) rollout.DeployOptions {
	o.Replicas, o.SecretName, o.SecretData = t.Replicas, t.SecretName, t.SecretData
	o.OTLPEndpoint, o.ImagePullSecrets, o.AppSecrets = t.OTLPEndpoint, t.ImagePullSecrets, t.AppSecrets
	o.Bake, o.Steps, o.Autoscale = t.Bake, t.Steps, t.Autoscale
	if _, set := o.Values["networkPolicy"]; !set {
		o.Values = maps.Clone(o.Values)
		if o.Values == nil {
			o.Values = map[string]any{}
		}
		o.Values["networkPolicy"] = t.policyValues()
	}
	return o
}

// policyValues are the chart's networkPolicy values for the site's network.
func (t Site) policyValues() map[string]any {
	blocks := []any{}
	for _, b := range t.Network.HostBlocks() {
		blk := map[string]any{"cidr": b.CIDR}
		if len(b.Except) > 0 {
			blk["except"] = b.Except
		}
		blocks = append(blocks, blk)
	}
	ns := []any{}
	for _, n := range t.Network.IngressNamespaces {
		ns = append(ns, n)
	}
	return map[string]any{"ingressNamespaces": ns, "hostBlocks": blocks}
}

// SiteFromConfig is what the stack's config alone says about the site: a
// namespace liftoff makes for it carries project/stack as its owner.
func SiteFromConfig(tg target.Target, project string, cfg *config.Stack) Site {
	r := cfg.Rollout
	t := Site{App: cfg.App.Name, Namespace: cfg.App.Namespace, Replicas: cfg.App.Replicas, ScaleDownDelay: cfg.ScaleDownDelay,
		Bake:  rollout.BakeOptions{Window: r.Bake, MaxErrorRatio: r.MaxErrorRatio, MaxP99: r.MaxP99, MinRequests: int64(r.MinRequests)},
		Steps: r.Steps, Autoscale: rollout.Autoscale{Min: r.AutoscaleMin, Max: r.AutoscaleMax, CPU: r.AutoscaleCPU, RPS: r.AutoscaleRPS},
		Registry: cfg.Registry.Repository, Insecure: cfg.Registry.Insecure, NamespaceLabels: outputs.OwnerLabels(project, cfg.Name), Network: cfg.Network,
		Stack: cfg.Name}
	if cfg.Notify.Known() { // inside the engine; otherwise resolveSite decrypts it
		t.Notify = cfg.Notify.Reveal()
	}
	t.Kubeconfig, t.Context = tg.Cluster(cfg)
	return t
}

// StackSite is where cfg's app is: what the config says, completed by what
// the stack's program recorded (the config alone before the first up).
func StackSite(ctx context.Context, eng *engine.Engine, targets *target.Registry, cfg *config.Stack, kubeDir string) (Site, error) {
	tg, err := targets.For(cfg)
	if err != nil {
		return Site{}, err
	}
	t := SiteFromConfig(tg, eng.Project(), cfg)
	st, err := eng.Stack(ctx, cfg.Name, nil, false)
	if failure.ClassOf(err) == failure.NotFound {
		return t, nil
	}
	if err != nil {
		return t, err
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return t, fmt.Errorf("read the outputs of %s: %w", cfg.Name, err)
	}
	return t, ResolveSite(ctx, st, outs, &t, kubeDir)
}

// ResolveSite completes t from what the stack's program recorded:
// kubeconfig (a file under kubeDir when the program outputs its content),
// registry and its credentials, the app's Secret and, when the program does
// not manage that Secret, the database and cache URLs from the stack's secrets.
func ResolveSite(ctx context.Context, st *engine.Stack, outs engine.Outputs, t *Site, kubeDir string) error {
	return resolveSite(ctx, st, outs, t, kubeDir, nil)
}

// siteKeys are the config keys resolveSite reads.
var siteKeys = []string{config.AppSecretsKey, "liftoff:databaseUrl", "liftoff:cacheUrl", "liftoff:notify"}

// siteValues are, inside a program the engine runs in this process, the
// decrypted values of siteKeys it was handed, so that the deploy that
// follows need not start the CLI once more to decrypt them.
func siteValues(ctx *pulumi.Context) map[string]auto.ConfigValue {
	vals := map[string]auto.ConfigValue{}
	for _, k := range siteKeys {
		if v, ok := ctx.GetConfig(k); ok {
			vals[k] = auto.ConfigValue{Value: v, Secret: ctx.IsConfigSecret(k)}
		}
	}
	return vals
}

// resolveSite is ResolveSite with the config the program was handed, when
// it ran (nil: read from the engine).
func resolveSite(ctx context.Context, st *engine.Stack, outs engine.Outputs, t *Site, kubeDir string, all map[string]auto.ConfigValue) error {
	rec := outputs.Decode(outs.Values())
	for dst, v := range map[*string]string{&t.Kubeconfig: rec.Kubeconfig, &t.Context: rec.Context, &t.Namespace: rec.Namespace,
		&t.Registry: rec.Registry, &t.SecretName: rec.AppSecretName, &t.OTLPEndpoint: rec.OTLPEndpoint,
		&t.RegistryPortForward: rec.RegistryPortForward, &t.RegistryUsername: rec.RegistryUsername, &t.RegistryPassword: rec.RegistryPassword,
		&t.URL: rec.URL} {
		if v != "" {
			*dst = v
		}
	}
	t.Insecure = t.Insecure || rec.RegistryInsecure
	if len(rec.PodCIDRs)+len(rec.HostCIDRs)+len(rec.IngressNamespaces) > 0 {
		t.Network = config.Network{PodCIDRs: rec.PodCIDRs, HostCIDRs: rec.HostCIDRs, IngressNamespaces: rec.IngressNamespaces}
	}
	if rec.ImagePullSecret != "" {
		t.ImagePullSecrets = []string{rec.ImagePullSecret}
	}
	if rec.HasKubeconfig {
		var err error
		if t.Kubeconfig, err = keepKubeconfig(kubeDir, st.Name(), rec.KubeconfigContent); err != nil {
			return err
		}
	}
	if all == nil {
		var err error
		if all, err = st.AllConfig(ctx); err != nil {
			return fmt.Errorf("read the config of %s: %w", st.Name(), err)
		}
	}
	secrets, err := appSecrets(all)
	if err != nil {
		return err
	}
	if len(secrets) > 0 {
		t.AppSecrets = secrets.Env()
	}
	if v, ok := all["liftoff:notify"]; ok && v.Value != "" {
		t.Notify = v.Value
	}
	if rec.AppSecretManaged {
		return nil
	}
	data := map[string]string{}
	if v, ok := all["liftoff:databaseUrl"]; ok && v.Value != "" {
		data["DATABASE_URL"] = v.Value
	}
	if v, ok := all["liftoff:cacheUrl"]; ok && v.Value != "" {
		data["CACHE_URL"] = v.Value
	}
	if len(data) > 0 {
		t.SecretData = data
	}
	return nil
}

// keepKubeconfig writes the kubeconfig content a stack records where
// liftoff keeps it (kubeDir/<stack>.yaml, private) and returns that path.
func keepKubeconfig(kubeDir, stack, content string) (string, error) {
	path := filepath.Join(kubeDir, stack+".yaml")
	if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
		return "", fmt.Errorf("keep the kubeconfig: %w", err)
	}
	return path, nil
}
