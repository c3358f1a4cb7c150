package main

import (
	"context"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// ClusterFlags point at a cluster explicitly, for deploys without a stack.
type ClusterFlags struct {
	Kubeconfig string
	Context    string
	Namespace  string
	App        string
	Registry   string
	Secret     string
	Insecure   bool
}

func (t *ClusterFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&t.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: the stack's, or $KUBECONFIG)")
	fl.StringVar(&t.Context, "context", "", "kubeconfig context (default: the stack's, or the file's current)")
	fl.StringVar(&t.Namespace, "namespace", "", "namespace (default: the stack's liftoff:namespace)")
	fl.StringVar(&t.App, "app", "", "application name (default: the stack's liftoff:app, or shortener)")
	fl.StringVar(&t.Registry, "registry", "", "repository to push the built image to (default: the stack's)")
	fl.StringVar(&t.Secret, "secret", "", "existing Secret with DATABASE_URL and CACHE_URL (default: <app>-env)")
	fl.BoolVar(&t.Insecure, "insecure-registry", false, "allow plain HTTP to a non-loopback registry")
}

func (t ClusterFlags) explicit() bool {
	return t.Kubeconfig != "" || t.Context != "" || t.Namespace != ""
}

// Site resolves where the app goes: flags first, then the stack's
// outputs, then its config. Without a stack, the flags must say it all.
func (f *Factory) Site(ctx context.Context, flags ClusterFlags) (launch.Site, *config.Stack, error) {
	t := launch.Site{App: config.DefaultApp, Replicas: config.DefaultReplicas, ScaleDownDelay: config.DefaultScaleDownDelay, Bake: rollout.BakeOptions{Window: config.DefaultBake}}
	var cfg *config.Stack
	if _, err := f.StackName(); err == nil {
		if cfg, err = f.StackConfig(); err != nil {
			return t, nil, err
		}
		eng, err := f.Engine(ctx)
		if err != nil {
			return t, nil, err
		}
		if t, err = launch.StackSite(ctx, eng, f.targets(), cfg, filepath.Join(f.Home(), "kube", eng.Project())); err != nil {
			return t, nil, err
		}
	} else if !flags.explicit() {
		return t, nil, failure.Newf(failure.Config, "pass --stack, or --kubeconfig/--context and --namespace for a cluster without a stack", "no stack here and no cluster given")
	}
	for dst, v := range map[*string]string{&t.Kubeconfig: flags.Kubeconfig, &t.Context: flags.Context, &t.Namespace: flags.Namespace,
		&t.App: flags.App, &t.Registry: flags.Registry, &t.SecretName: flags.Secret} {
		if v != "" {
			*dst = v
		}
	}
	t.Insecure = t.Insecure || flags.Insecure
	if t.Namespace == "" {
		t.Namespace = t.App
	}
	return t, cfg, nil
}
