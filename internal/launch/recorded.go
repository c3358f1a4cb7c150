package launch

import (
	"context"
	"fmt"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/target"
)

// RecordedConfig describes stack name from what the backend recorded, for
// a teardown where its settings file is not (a CI job on a fresh checkout
// tearing down a preview another job created): its outputs (target, app,
// namespace, and what its target's teardown needs) and its tags (parent).
// That is all a teardown reads. ok is false when the backend has no such
// stack.
func RecordedConfig(ctx context.Context, eng *engine.Engine, targets *target.Registry, name string) (cfg *config.Stack, ok bool, err error) {
	st, err := eng.Stack(ctx, name, nil, false)
	if err != nil {
		return nil, false, nil
	}
	outs, err := st.Outputs(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("read the outputs of %s: %w", name, err)
	}
	tags, err := st.Tags(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("read the tags of %s: %w", name, err)
	}
	rec := outputs.Decode(outs.Values())
	vals := config.Values{}
	for key, v := range map[string]string{"liftoff:target": rec.Target, "liftoff:app": rec.App, "liftoff:namespace": rec.Namespace} {
		if v != "" {
			vals[key] = config.Plain(v)
		}
	}
	if rec.Target == "" {
		return nil, true, failure.Newf(failure.NotFound, "run liftoff destroy where its Pulumi."+name+".yaml is, or remove its state with liftoff stacks rm",
			"stack %s has no settings file here and recorded no outputs to tear it down from", name)
	}
	if p := tags[TagPreviewOf]; p != "" {
		vals["liftoff:previewOf"] = config.Plain(p)
	} else if tg, known := targets.Named(rec.Target); known {
		for k, v := range tg.TeardownValues(rec) {
			vals[k] = v
		}
	}
	cfg, err = config.Parse(name, vals)
	if err != nil {
		return nil, true, failure.New(failure.Config, fmt.Errorf("stack %s has no settings file here, and its recorded outputs do not describe it: %w", name, err), "")
	}
	return cfg, true, nil
}
