package launch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/image"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
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
}

// DeployOptions select what `deploy` does.
type DeployOptions struct {
	Target Site
	// Image to deploy; empty builds and pushes Build first.
	Image string
	Build BuildOptions
	// Rollout knobs.
	NoPromote bool
	Detach    bool
	LockWait  time.Duration
	Smoke     rollout.SmokeMode
	// ReadyTimeout bounds the wait for the new slot (0: the engine's default).
	ReadyTimeout time.Duration
	Self         lock.Holder
	// Tune lets tests shorten the engine's waits.
	Tune func(*rollout.Client)
	// ReuseLive redeploys the live slot's image (a secrets change), Action
	// names the deploy in the history, Locked runs under the deploy lock
	// before anything changes and returns the app secrets to deploy with.
	ReuseLive bool
	Action    string
	// Force deploys even when the live slot already runs this.
	Force  bool
	Locked func(context.Context) (map[string]string, error)
}

// DeployResult is the summary of `deploy`.
type DeployResult struct {
	Image  string          `json:"image"`
	Build  *BuildResult    `json:"build,omitempty"`
	Result *rollout.Result `json:"rollout"`
	Phases []PhaseResult   `json:"phases"`
}

// buildAndPush builds the image and pushes it to the target's registry,
// through a port-forward when only the cluster's nodes can reach it. The
// reference returned is the one the nodes pull: registry@digest.
func (o DeployOptions) buildAndPush(ctx context.Context, d Deps) (*BuildResult, error) {
	t := o.Target
	b := o.Build
	b.Repository, b.Insecure = t.Registry, t.Insecure || b.Insecure
	if b.Repository == "" {
		return nil, failure.Newf(failure.Config, "pass --registry, set liftoff:registry, or deploy a prebuilt --image", "no registry to push to")
	}
	if len(b.Platforms) == 0 {
		b.Platforms = o.nodePlatforms(ctx, d)
	}
	if t.RegistryUsername != "" {
		b.Keychain = image.BasicKeychain{Username: t.RegistryUsername, Password: t.RegistryPassword}
	}
	if t.RegistryPortForward != "" {
		e, err := t.Client(d, o.Self)
		if err != nil {
			return nil, err
		}
		addr, stop, err := rollout.PortForward(ctx, e.Rest, t.RegistryPortForward)
		if err != nil {
			return nil, failure.New(failure.Registry, fmt.Errorf("reach the in-cluster registry: %w", err), "check that the registry pod runs: liftoff status")
		}
		defer stop()
		_, repo, _ := strings.Cut(t.Registry, "/")
		b.Repository, b.Insecure = addr+"/"+repo, true
	}
	br, err := Build(ctx, d, b)
	if err == nil && br.Reference != "" {
		br.Reference = t.Registry + "@" + br.Digest
	}
	return br, err
}

// nodePlatforms are the platforms of the cluster's nodes: what a deploy
// builds unless told otherwise (half the work of both on a one-arch
// cluster). When the nodes cannot be listed, it builds every default platform.
func (o DeployOptions) nodePlatforms(ctx context.Context, d Deps) []string {
	e, err := o.Target.Client(d, o.Self)
	if err == nil {
		var ps []string
		if ps, err = e.NodePlatforms(ctx); err == nil && len(ps) > 0 {
			return ps
		}
	}
	d.Printer.Infof("building %s (the cluster's node platforms are unknown: %v)", strings.Join(image.DefaultPlatforms, ", "), err)
	return image.DefaultPlatforms
}

// Client connects a rollout client to the site.
func (t Site) Client(d Deps, self lock.Holder) (*rollout.Client, error) {
	e, err := rollout.New(rollout.AppRef{Kubeconfig: t.Kubeconfig, Context: t.Context, Namespace: t.Namespace, App: t.App,
		NamespaceLabels: t.NamespaceLabels, NamespaceAnnotations: t.NamespaceAnnotations}, d.Printer, self)
	if err != nil {
		return nil, err
	}
	if t.ScaleDownDelay > 0 {
		e.ScaleDownDelay = t.ScaleDownDelay
	}
	e.Now = d.Now
	return e, nil
}

// Deploy builds and pushes the image (unless given one), then rolls it out blue-green.
func Deploy(ctx context.Context, d Deps, o DeployOptions) (*DeployResult, error) {
	res := &DeployResult{Image: o.Image}
	var phases []PhaseResult
	if o.Image == "" && !o.ReuseLive {
		br, err := o.buildAndPush(ctx, d)
		if br != nil {
			phases = append(phases, br.Phases...)
		}
		if err != nil {
			return nil, err
		}
		res.Build, res.Image = br, br.Reference
	}
	e, err := o.Target.Client(d, o.Self)
	if err != nil {
		return nil, err
	}
	e.LockWait = o.LockWait
	if o.Smoke != "" {
		e.Smoke = o.Smoke
	}
	if o.ReadyTimeout > 0 {
		e.ReadyTimeout = o.ReadyTimeout
	}
	if o.Tune != nil {
		o.Tune(e)
	}
	var locked func(context.Context, *rollout.DeployOptions) error
	if o.Locked != nil {
		locked = func(ctx context.Context, ro *rollout.DeployOptions) error {
			env, err := o.Locked(ctx)
			ro.AppSecrets = env
			return err
		}
	}
	ph, err := runPhases(ctx, d, []phase{{"deploy", func(ctx context.Context) error {
		r, err := e.Deploy(ctx, rollout.DeployOptions{Image: res.Image, Replicas: o.Target.Replicas, SecretName: o.Target.SecretName,
			SecretData: o.Target.SecretData, OTLPEndpoint: o.Target.OTLPEndpoint, ImagePullSecrets: o.Target.ImagePullSecrets,
			NoPromote: o.NoPromote, Detach: o.Detach, AppSecrets: o.Target.AppSecrets,
			ReuseLive: o.ReuseLive, Action: o.Action, Locked: locked, Force: o.Force})
		res.Result = r
		if r != nil && o.ReuseLive {
			res.Image = r.Image
		}
		return err
	}}})
	res.Phases = append(phases, ph...)
	return res, err
}
