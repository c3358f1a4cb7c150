package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// inheritedSettings are the parent's settings a new preview starts from:
// what the app is and how it is built, and where the images of its own
// PostgreSQL and Valkey come from (the parent's mirror). Its database, cache
// and secrets are its own (in its namespace by default), never the parent's.
var inheritedSettings = []string{"liftoff:app", "liftoff:package", "liftoff:replicas", "liftoff:scaleDownDelay",
	"liftoff:postgresImage", "liftoff:valkeyImage"}

// ensurePreview makes the current stack a preview of parent: it creates the
// stack from the parent's target and app settings when it does not exist,
// refuses one that is not parent's preview, and records ttl when given.
// Everything is validated before anything is written.
func ensurePreview(ctx context.Context, f *Factory, parent string, ttl string) error {
	name, err := f.StackName()
	if err != nil {
		return err
	}
	dir := f.Dir()
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
		for _, k := range inheritedSettings {
			if v, ok := pvals[k]; ok {
				vals[k] = v
			}
		}
	}
	if ttl != "" {
		vals["liftoff:ttl"] = config.Plain(ttl)
	}
	if _, err := config.Parse(name, vals); err != nil {
		return failure.New(failure.Config, err, "nothing was written")
	}
	if exists && ttl == "" {
		return nil // nothing to write: up's own parent check comes before any change
	}
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	if _, err := launch.OpenParent(ctx, eng, parent); err != nil {
		return err
	}
	if !exists {
		if _, err := createStack(ctx, f, name, vals); err != nil {
			return err
		}
		f.Printer().Infof("created preview stack %s of %s", name, parent)
		return nil
	}
	st, err := eng.Stack(ctx, name, nil, false)
	if err != nil {
		return err
	}
	if err := st.SetConfig(ctx, "liftoff:ttl", engine.ConfigEntry{Value: ttl}, false); err != nil {
		return fmt.Errorf("record ttl: %w", err)
	}
	return nil
}
