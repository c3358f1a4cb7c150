package launch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// TargetFromConfig is what the stack's config alone says about the app target.
func TargetFromConfig(cfg *config.Stack) AppTarget {
	t := AppTarget{App: cfg.App.Name, Namespace: cfg.App.Namespace, Replicas: cfg.App.Replicas, ScaleDownDelay: cfg.ScaleDownDelay,
		Registry: cfg.Registry.Repository, Insecure: cfg.Registry.Insecure}
	if cfg.Kubeconfig != nil {
		t.Kubeconfig, t.Context = cfg.Kubeconfig.Path, cfg.Kubeconfig.Context
	}
	return t
}

// ResolveTarget completes t from what the stack's program recorded:
// kubeconfig (a file under kubeDir when the program outputs its content),
// registry and its credentials, the app's Secret and, when the program does
// not manage that Secret, the database and cache URLs from the stack's secrets.
func ResolveTarget(ctx context.Context, st *engine.Stack, outs engine.Outputs, t *AppTarget, kubeDir string) error {
	for key, dst := range map[string]*string{"kubeconfig": &t.Kubeconfig, "context": &t.Context, "namespace": &t.Namespace,
		"registry": &t.Registry, "appSecretName": &t.SecretName, "otlpEndpoint": &t.OTLPEndpoint,
		"registryPortForward": &t.RegistryPortForward, "registryUsername": &t.RegistryUsername} {
		if v := outs.String(key); v != "" {
			*dst = v
		}
	}
	if v, ok := outs["registryPassword"].Value.(string); ok {
		t.RegistryPassword = v
	}
	if b, ok := outs["registryInsecure"].Value.(bool); ok {
		t.Insecure = t.Insecure || b
	}
	if s := outs.String("imagePullSecret"); s != "" {
		t.ImagePullSecrets = []string{s}
	}
	if u := outs.String("url"); u != "" {
		t.URL = u
	}
	if kc, ok := outs["kubeconfigContent"]; ok {
		s, _ := kc.Value.(string)
		path := filepath.Join(kubeDir, st.Name()+".yaml")
		if err := os.MkdirAll(kubeDir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			return err
		}
		t.Kubeconfig = path
	}
	all, err := st.AllConfig(ctx)
	if err != nil {
		return err
	}
	if v, ok := all[config.AppSecretsKey]; ok {
		secrets, err := config.DecodeAppSecrets(v.Value)
		if err != nil {
			return failure.New(failure.Config, fmt.Errorf("%s %w", config.ShortName(config.AppSecretsKey), err), "rewrite it with liftoff secrets set")
		}
		t.AppSecrets = secrets.Env()
	}
	if managed, _ := outs["appSecretManaged"].Value.(bool); managed {
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
