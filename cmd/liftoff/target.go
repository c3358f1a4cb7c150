package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// TargetFlags point at a cluster explicitly, for deploys without a stack.
type TargetFlags struct {
	Kubeconfig string
	Context    string
	Namespace  string
	App        string
	Registry   string
	Secret     string
	Insecure   bool
}

func (t *TargetFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&t.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: the stack's, or $KUBECONFIG)")
	fl.StringVar(&t.Context, "context", "", "kubeconfig context (default: the stack's, or the file's current)")
	fl.StringVar(&t.Namespace, "namespace", "", "namespace (default: the stack's liftoff:namespace)")
	fl.StringVar(&t.App, "app", "", "application name (default: the stack's liftoff:app, or shortener)")
	fl.StringVar(&t.Registry, "registry", "", "repository to push the built image to (default: the stack's)")
	fl.StringVar(&t.Secret, "secret", "", "existing Secret with DATABASE_URL and CACHE_URL (default: <app>-env)")
	fl.BoolVar(&t.Insecure, "insecure-registry", false, "allow plain HTTP to a non-loopback registry")
}

func (t TargetFlags) explicit() bool {
	return t.Kubeconfig != "" || t.Context != "" || t.Namespace != ""
}

// AppTarget resolves where the app goes: flags first, then the stack's
// outputs, then its config. Without a stack, the flags must say it all.
func (f *Factory) AppTarget(ctx context.Context, flags TargetFlags) (launch.AppTarget, *config.Stack, error) {
	t := launch.AppTarget{App: "shortener", Replicas: 2}
	var cfg *config.Stack
	if _, err := f.StackName(); err == nil {
		if cfg, err = f.StackConfig(); err != nil {
			return t, nil, err
		}
		t.App, t.Namespace, t.Replicas, t.ScaleDownDelay = cfg.App.Name, cfg.App.Namespace, cfg.App.Replicas, cfg.ScaleDownDelay
		t.Registry, t.Insecure = cfg.Registry.Repository, cfg.Registry.Insecure
		if cfg.Kubeconfig != nil {
			t.Kubeconfig, t.Context = cfg.Kubeconfig.Path, cfg.Kubeconfig.Context
		}
		if err := f.fromOutputs(ctx, cfg, &t); err != nil {
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

// fromOutputs reads what the stack's program recorded: kubeconfig, registry,
// the app's Secret, and, when the program does not manage that Secret, the
// database and cache URLs from the stack's secrets.
func (f *Factory) fromOutputs(ctx context.Context, cfg *config.Stack, t *launch.AppTarget) error {
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	st, err := eng.Stack(ctx, cfg.Name, nil, false)
	if failure.ClassOf(err) == failure.NotFound {
		return nil // never up'd: config only
	}
	if err != nil {
		return err
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return err
	}
	for key, dst := range map[string]*string{"kubeconfig": &t.Kubeconfig, "context": &t.Context, "namespace": &t.Namespace,
		"registry": &t.Registry, "appSecretName": &t.SecretName, "otlpEndpoint": &t.OTLPEndpoint} {
		if v := outs.String(key); v != "" {
			*dst = v
		}
	}
	if b, ok := outs["registryInsecure"].Value.(bool); ok {
		t.Insecure = t.Insecure || b
	}
	// Targets that create their cluster output its kubeconfig as a secret.
	if kc, ok := outs["kubeconfigContent"]; ok {
		s, _ := kc.Value.(string)
		path := filepath.Join(f.Home(), "kube", eng.Project()+"-"+cfg.Name+".yaml")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			return err
		}
		t.Kubeconfig = path
	}
	if managed, _ := outs["appSecretManaged"].Value.(bool); managed {
		return nil
	}
	return f.secretsFromConfig(ctx, st, t)
}

func (f *Factory) secretsFromConfig(ctx context.Context, st *engine.Stack, t *launch.AppTarget) error {
	all, err := st.AllConfig(ctx)
	if err != nil {
		return err
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
