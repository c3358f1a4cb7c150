package launch

import (
	"context"
	"fmt"
	"strings"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// SetConfigOptions say which setting `config set` stores.
type SetConfigOptions struct {
	// Dir is the project directory with the stack's settings file.
	Dir   string
	Stack string
	// Key is a liftoff setting (replicas, liftoff:replicas), another
	// provider's key (aws:profile), or with Path a property path into an
	// object setting (nodes[0].host).
	Key    string
	Secret bool
	Path   bool
	// Value is asked for only once the key is known to be settable, so a
	// prompt never comes before an error about the key.
	Value func(key string) (string, error)
	// Engine opens the engine, once the setting is known to be valid.
	Engine func(context.Context) (*engine.Engine, error)
}

// SetConfigResult is what was stored.
type SetConfigResult struct {
	Stack string `json:"stack"`
	Key   string `json:"key"`
	// Shown is the value, or "[secret]".
	Shown  string `json:"value"`
	Secret bool   `json:"secret"`
}

// SetConfig validates one setting against the whole stack's config and
// stores it (secrets encrypted). Nothing is stored when the value, or the
// config it makes, is invalid.
func SetConfig(ctx context.Context, o SetConfigOptions) (*SetConfigResult, error) {
	key, steps := config.FullName(o.Key), []any(nil)
	var err error
	if o.Path {
		if key, steps, err = config.SplitPath(o.Key); err != nil {
			return nil, failure.New(failure.Config, err, "write paths like nodes[0].host")
		}
	}
	if key == config.AppSecretsKey {
		return nil, failure.Newf(failure.Config, "liftoff secrets set KEY=VALUE (it validates the names and restarts the app with them)", "%s is managed by liftoff secrets", config.ShortName(key))
	}
	def, known := config.Lookup(key)
	ns, _, _ := strings.Cut(key, ":")
	if !known && config.OwnsNamespace(ns) {
		return nil, failure.Newf(failure.Config, "see the config reference: docs/config.md", "%s is not a liftoff setting", config.ShortName(key))
	}
	if known && def.Secret() != o.Secret {
		if def.Secret() {
			return nil, failure.Newf(failure.Config, "liftoff config set --secret "+config.ShortName(key), "%s is a secret: store it with --secret", config.ShortName(key))
		}
		return nil, failure.Newf(failure.Config, "drop --secret", "%s is not a secret setting", config.ShortName(key))
	}
	value, err := o.Value(config.ShortName(key))
	if err != nil {
		return nil, err
	}
	vals, err := config.ReadStackFile(o.Dir, o.Stack)
	if err != nil {
		return nil, failure.New(failure.NotFound, err, "run liftoff init --stack "+o.Stack)
	}
	nv := config.Value{Text: value, Secret: o.Secret, Known: true}
	if o.Path {
		doc, err := config.SetPath(vals[key].Text, steps, config.PathValue(value))
		if err != nil {
			return nil, failure.New(failure.Config, fmt.Errorf("%s: %w", o.Key, err), "")
		}
		nv = config.Plain(doc)
	}
	vals[key] = nv
	if _, err := config.Parse(o.Stack, vals); err != nil {
		// Only this key's errors stop it: the stack may be mid-way through
		// a change that takes several settings.
		if es, ok := config.AsErrors(err); ok && (len(es.For(key)) > 0 || key == "liftoff:target") {
			mine := es.For(key)
			if len(mine) == 0 {
				mine = es
			}
			return nil, failure.New(failure.Config, mine, "nothing was stored")
		}
	}
	eng, err := o.Engine(ctx)
	if err != nil {
		return nil, fmt.Errorf("open the engine: %w", err)
	}
	st, err := eng.Stack(ctx, o.Stack, nil, false)
	if err != nil {
		return nil, fmt.Errorf("open stack %s: %w", o.Stack, err)
	}
	storeKey := key
	if o.Path {
		storeKey = config.FullName(o.Key)
	}
	if err := st.SetConfig(ctx, storeKey, engine.ConfigEntry{Value: value, Secret: o.Secret, Object: known && def.Type == "object" && !o.Path}, o.Path); err != nil {
		return nil, fmt.Errorf("store %s: %w", key, err)
	}
	res := &SetConfigResult{Stack: o.Stack, Key: storeKey, Shown: value, Secret: o.Secret}
	if o.Secret {
		res.Shown = "[secret]"
	}
	return res, nil
}
