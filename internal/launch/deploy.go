package launch

import (
	"context"
	"fmt"
	"time"

	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// AppTarget is where the app goes: cluster, namespace, registry and secrets.
type AppTarget struct {
	Kubeconfig string
	Context    string
	Namespace  string
	App        string
	Registry   string
	Insecure   bool
	Replicas   int
	// SecretName is the Secret the pods read; SecretData, when set, is written to it.
	SecretName       string
	SecretData       map[string]string
	OTLPEndpoint     string
	ImagePullSecrets []string
	ScaleDownDelay   time.Duration
}

// DeployOptions select what `deploy` does.
type DeployOptions struct {
	Target AppTarget
	// Image to deploy; empty builds and pushes Build first.
	Image string
	Build BuildOptions
	// Rollout knobs.
	NoPromote bool
	Detach    bool
	LockWait  time.Duration
	Smoke     rollout.SmokeMode
	Self      lock.Holder
	// Tune lets tests shorten the engine's waits.
	Tune func(*rollout.Engine)
}

// DeployResult is the summary of `deploy`.
type DeployResult struct {
	Image  string          `json:"image"`
	Build  *BuildResult    `json:"build,omitempty"`
	Result *rollout.Result `json:"rollout"`
	Phases []PhaseResult   `json:"phases"`
}

// Engine connects the rollout engine to an app target.
func (t AppTarget) Engine(d Deps, self lock.Holder) (*rollout.Engine, error) {
	e, err := rollout.New(rollout.Target{Kubeconfig: t.Kubeconfig, Context: t.Context, Namespace: t.Namespace, App: t.App}, d.Printer, self)
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
	if o.Image == "" {
		b := o.Build
		b.Repository, b.Insecure = o.Target.Registry, o.Target.Insecure || b.Insecure
		if b.Repository == "" {
			return nil, fmt.Errorf("no registry to push to: pass --registry, set liftoff:registry, or deploy a prebuilt --image")
		}
		br, err := Build(ctx, d, b)
		phases = append(phases, br.Phases...)
		if err != nil {
			return nil, err
		}
		res.Build, res.Image = br, br.Reference
	}
	e, err := o.Target.Engine(d, o.Self)
	if err != nil {
		return nil, err
	}
	e.LockWait = o.LockWait
	if o.Smoke != "" {
		e.Smoke = o.Smoke
	}
	if o.Tune != nil {
		o.Tune(e)
	}
	ph, err := runPhases(ctx, d, []phase{{"deploy", func(ctx context.Context) error {
		r, err := e.Deploy(ctx, rollout.DeployOptions{Image: res.Image, Replicas: o.Target.Replicas, SecretName: o.Target.SecretName,
			SecretData: o.Target.SecretData, OTLPEndpoint: o.Target.OTLPEndpoint, ImagePullSecrets: o.Target.ImagePullSecrets,
			NoPromote: o.NoPromote, Detach: o.Detach})
		res.Result = r
		return err
	}}})
	res.Phases = append(phases, ph...)
	return res, err
}
