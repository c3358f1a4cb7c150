package launch

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// InheritedSettings are the parent's settings a new preview starts from:
// what the app is and how it is built, and where the images of its own
// PostgreSQL and Valkey come from (the parent's mirror). Its database, cache
// and secrets are its own (in its namespace by default), never the parent's.
var InheritedSettings = []string{"liftoff:app", "liftoff:package", "liftoff:replicas", "liftoff:scaleDownDelay",
	"liftoff:postgresImage", "liftoff:valkeyImage"}

// EnsurePreview makes stack name a preview of parent: it creates the
// stack from the parent's target and app settings when it does not exist,
// refuses one that is not parent's preview, and records the settings in
// set (liftoff:ttl, liftoff:previewKubeconfig, liftoff:previewContext).
// Everything is validated before anything is written.
// open opens the engine, once the settings are known to be valid.
func EnsurePreview(ctx context.Context, open func(context.Context) (*engine.Engine, error), log *ui.Printer, dir, name, parent string, set config.Values) error {
	vals, err := config.ReadStackFile(dir, name)
	exists := err == nil
	switch {
	case exists:
		if of := vals["liftoff:previewOf"].Text; of != parent {
			return failure.Newf(failure.Config, "pick another --stack, or drop --preview-of to update it as it is",
				"stack %s already exists and is not a preview of %s (liftoff:previewOf is %q)", name, parent, of)
		}
	case !errors.Is(err, config.ErrNoStackFile):
		return failure.New(failure.Config, err, "fix the YAML of stack "+name)
	default:
		pvals, err := config.ReadStackFile(dir, parent)
		if errors.Is(err, config.ErrNoStackFile) {
			return failure.Newf(failure.NotFound, "check --preview-of, or liftoff init the parent and liftoff up it first",
				"parent stack %s has no settings file %s", parent, config.StackFilePath(dir, parent))
		}
		if err != nil {
			return failure.New(failure.Config, err, "fix the YAML of stack "+parent)
		}
		vals = config.Values{"liftoff:target": pvals["liftoff:target"], "liftoff:previewOf": config.Plain(parent)}
		for _, k := range InheritedSettings {
			if v, ok := pvals[k]; ok {
				vals[k] = v
			}
		}
	}
	maps.Copy(vals, set)
	if _, err := config.Parse(name, vals); err != nil {
		return failure.New(failure.Config, err, "nothing was written")
	}
	if exists && len(set) == 0 {
		return nil // nothing to write: up's own parent check comes before any change
	}
	eng, err := open(ctx)
	if err != nil {
		return err
	}
	if _, err := OpenParent(ctx, eng, parent); err != nil {
		return err
	}
	if !exists {
		if err := CreateStack(ctx, eng, name, vals, log); err != nil {
			return err
		}
		log.Infof("created preview stack %s of %s", name, parent)
		return nil
	}
	st, err := eng.Stack(ctx, name, nil, false)
	if err != nil {
		return fmt.Errorf("open stack %s: %w", name, err)
	}
	entries := map[string]engine.ConfigEntry{}
	for k, v := range set {
		entries[k] = engine.ConfigEntry{Value: v.Text, Secret: v.Secret}
	}
	if err := st.SetConfigs(ctx, entries); err != nil {
		return fmt.Errorf("record %s on %s: %w", strings.Join(slices.Sorted(maps.Keys(set)), ", "), name, err)
	}
	return nil
}

// CreateStack creates a stack in the engine with validated settings; when
// the settings cannot be written, the half-created stack is removed.
func CreateStack(ctx context.Context, eng *engine.Engine, stack string, vals config.Values, log *ui.Printer) error {
	st, err := eng.Stack(ctx, stack, nil, true)
	if err != nil {
		return fmt.Errorf("open stack %s: %w", stack, err)
	}
	entries := map[string]engine.ConfigEntry{}
	for k, v := range vals {
		kk, _ := config.Lookup(k)
		entries[k] = engine.ConfigEntry{Value: v.Text, Secret: v.Secret, Object: kk.Type == "object"}
	}
	// The secrets liftoff generates, so the stack runs with the plain pulumi
	// CLI too (up generates any that a later config change needs).
	if cfg, err := config.Parse(stack, vals); err == nil {
		for _, k := range config.Missing(cfg) {
			v, err := config.GenerateSecret()
			if err != nil {
				return fmt.Errorf("generate a secret: %w", err)
			}
			entries[k] = engine.ConfigEntry{Value: v, Secret: true}
		}
	}
	if err := st.SetConfigs(ctx, entries); err != nil {
		if rmErr := eng.RemoveStack(context.WithoutCancel(ctx), stack, true); rmErr != nil {
			log.Warnf("could not remove the half-created stack %s: %v", stack, rmErr)
		}
		return fmt.Errorf("store the generated secrets: %w", err)
	}
	return nil
}
