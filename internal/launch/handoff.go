package launch

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// The preview's own registry credentials, from its job's environment: the
// variables every push of liftoff reads (image.Keychain).
const (
	EnvRegistryUsername = "LIFTOFF_REGISTRY_USERNAME"
	EnvRegistryPassword = "LIFTOFF_REGISTRY_PASSWORD"
)

// ownCredential names, for each secret output of a parent, the preview's
// own credential that stands in for it.
var ownCredential = map[string]string{
	outputs.KubeconfigContent: "its own kubeconfig for the parent's cluster (liftoff up --preview-of PARENT --kubeconfig FILE [--context NAME])",
	outputs.RegistryUsername:  ownRegistryLogin,
	outputs.RegistryPassword:  ownRegistryLogin,
}

const ownRegistryLogin = "its own registry credentials (" + EnvRegistryUsername + " and " + EnvRegistryPassword + ")"

// Handoff reads what a preview takes from its parent, before anything
// changes: the parent's outputs, read without opening its secrets (so
// without its passphrase), and the preview's own credentials in place of
// the parent's secret ones: its kubeconfig (liftoff:previewKubeconfig)
// and its registry login (getenv's EnvRegistryUsername and
// EnvRegistryPassword). A secret the preview still needs is opened with
// this run's passphrase when that opens the parent's state (one passphrase
// for both: the parent's owner making a preview); otherwise the preview is
// refused, naming the credential to give it.
func Handoff(ctx context.Context, e *engine.Engine, cfg *config.Stack, getenv func(string) string) (*target.Handoff, error) {
	p, err := openParent(ctx, e, cfg.Preview.Of)
	if err != nil {
		return nil, err
	}
	return handoff(ctx, cfg, p, getenv)
}

// handoff is Handoff from the parent openParent opened.
func handoff(ctx context.Context, cfg *config.Stack, p *openedParent, getenv func(string) string) (*target.Handoff, error) {
	of, pst, plain, sealed := cfg.Preview.Of, p.st, p.plain, p.sealed
	h := &target.Handoff{Parent: of, Values: map[string]any{}, Secret: map[string]bool{}}
	for _, k := range outputs.PreviewReads {
		if v, ok := plain[k]; ok {
			h.Values[k] = v.Value
		}
	}
	if path := cfg.Preview.Kubeconfig; path != "" {
		doc, name, err := OwnKubeconfig(path, cfg.Preview.Context)
		if err != nil {
			return nil, err
		}
		delete(h.Values, outputs.Kubeconfig)
		h.Values[outputs.KubeconfigContent], h.Secret[outputs.KubeconfigContent] = string(doc), true
		h.Values[outputs.Context] = name
	}
	if (getenv(EnvRegistryUsername) == "") != (getenv(EnvRegistryPassword) == "") {
		return nil, failure.Newf(failure.Config, "set both "+EnvRegistryUsername+" and "+EnvRegistryPassword+", or neither",
			"the preview's registry login is half given: %s and %s go together; nothing was changed", EnvRegistryUsername, EnvRegistryPassword)
	}
	inClusterRegistry := h.Values[outputs.RegistryUsername] != nil || slices.Contains(sealed, outputs.RegistryUsername)
	if user := getenv(EnvRegistryUsername); user != "" && inClusterRegistry {
		h.Values[outputs.RegistryUsername] = user
		h.Values[outputs.RegistryPassword], h.Secret[outputs.RegistryPassword] = getenv(EnvRegistryPassword), true
	}
	var need []string
	for _, k := range sealed {
		if _, have := h.Values[k]; !have && slices.Contains(outputs.PreviewReads, k) {
			need = append(need, k)
		}
	}
	if len(need) == 0 {
		return h, nil
	}
	opens, err := pst.OpensSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the state of parent %s: %w", of, err)
	}
	if !opens {
		var give []string
		for _, k := range need {
			g := ownCredential[k]
			if g == "" {
				g = "the parent's passphrase (" + k + " has no stand-in)"
			}
			if !slices.Contains(give, g) {
				give = append(give, g)
			}
		}
		return nil, failure.Newf(failure.Auth, "give preview "+cfg.Name+" "+strings.Join(give, ", and "),
			"parent stack %s keeps %s secret, under a passphrase this run does not have (the preview's own): nothing was changed", of, strings.Join(need, ", "))
	}
	all, err := pst.Outputs(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the outputs of parent %s: %w", of, err)
	}
	for _, k := range need {
		h.Values[k], h.Secret[k] = all[k].Value, true
	}
	return h, nil
}

// OwnKubeconfig reads a preview's own kubeconfig: the file at path cut
// down to one context (name, or the file's current one), with every file
// it refers to inlined, so the preview's state can keep it for later runs
// elsewhere (a teardown job on another runner).
func OwnKubeconfig(path, name string) (doc []byte, context string, err error) {
	fix := "pass --kubeconfig a kubeconfig file of the parent's cluster (a user made for previews)"
	raw, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, "", failure.Newf(failure.Config, fix, "liftoff:previewKubeconfig: %v", err)
	}
	if name == "" {
		name = raw.CurrentContext
	}
	if _, ok := raw.Contexts[name]; !ok || name == "" {
		have := make([]string, 0, len(raw.Contexts))
		for n := range raw.Contexts {
			have = append(have, n)
		}
		slices.Sort(have)
		return nil, "", failure.Newf(failure.Config, "pass --context one of: "+strings.Join(have, ", "),
			"liftoff:previewContext: %s has no context %q", path, name)
	}
	raw.CurrentContext = name
	if err := clientcmdapi.MinifyConfig(raw); err != nil {
		return nil, "", failure.Newf(failure.Config, fix, "liftoff:previewKubeconfig: %v", err)
	}
	if err := clientcmdapi.FlattenConfig(raw); err != nil {
		return nil, "", failure.Newf(failure.Config, fix, "liftoff:previewKubeconfig: %v", err)
	}
	doc, err = clientcmd.Write(*raw)
	return doc, name, err
}

// CheckDataAccess: --with-data copies the parent's database into the
// preview, which takes the parent's secrets (its database's password). A
// run whose passphrase does not open the parent's state is refused before
// anything changes.
func CheckDataAccess(ctx context.Context, open func(context.Context) (*engine.Engine, error), parent string) error {
	e, err := open(ctx)
	if err != nil {
		return err
	}
	pst, err := OpenParent(ctx, e, parent)
	if err != nil {
		return err
	}
	opens, err := pst.OpensSecrets(ctx)
	if err != nil {
		return fmt.Errorf("read the state of parent %s: %w", parent, err)
	}
	if !opens {
		return failure.Newf(failure.Auth, "run it with "+parent+"'s passphrase (LIFTOFF_PASSPHRASE), or drop --with-data",
			"--with-data copies %s's data, which takes %s's secrets (its database's password), and this run's passphrase does not open them: nothing was changed", parent, parent)
	}
	return nil
}
