package launch

import (
	"context"
	"fmt"
	"strings"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// GCOptions say how `stacks gc` destroys expired previews.
type GCOptions struct {
	DryRun bool
	// Force carries on when a preview's cluster can no longer be reached.
	Force   bool
	KubeDir string
	// Config is a preview's config: its settings file, or what the backend
	// recorded (RecordedConfig) when the file is not here.
	Config func(ctx context.Context, stack string) (*config.Stack, error)
	// Confirm is asked once before anything is destroyed, with what will be.
	Confirm func(what []string) error
}

// GCResult is what `stacks gc` found and did.
type GCResult struct {
	Expired  []engine.StackSummary     `json:"expired"`
	DryRun   bool                      `json:"dry_run,omitempty"`
	Removed  []string                  `json:"removed,omitempty"`
	Failed   []string                  `json:"failed,omitempty"`
	Receipts map[string]*DestroyResult `json:"receipts,omitempty"`
}

// Describe lists the expired previews for people.
func (r *GCResult) Describe() []string {
	var out []string
	for _, s := range r.Expired {
		out = append(out, fmt.Sprintf("%s (preview of %s, expired %s)", s.Name, s.Tags[TagPreviewOf], s.Tags[TagExpires]))
	}
	return out
}

// GC destroys every preview whose TTL has passed, one at a time and each
// as `liftoff destroy --stack NAME` would, carrying on past a failure; the
// error names the previews that are left.
func GC(ctx context.Context, d Deps, o GCOptions) (*GCResult, error) {
	list, err := d.Engine.ListStacks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list the stacks: %w", err)
	}
	res := &GCResult{Expired: Expired(list, d.Now()), DryRun: o.DryRun, Receipts: map[string]*DestroyResult{}}
	if o.DryRun || len(res.Expired) == 0 {
		return res, nil
	}
	if err := o.Confirm(res.Describe()); err != nil {
		return res, err
	}
	for _, s := range res.Expired {
		if err := ctx.Err(); err != nil {
			return res, failure.New(failure.Interrupted, err, "run liftoff stacks gc again")
		}
		dr, err := gcOne(ctx, d, o, s.Name)
		if dr != nil {
			res.Receipts[s.Name] = dr
		}
		if err != nil {
			d.Printer.Warnf("%s: %v", s.Name, err)
			if dr != nil {
				d.Printer.Warnf("%s: %s", s.Name, dr.Receipt.Text())
			}
			res.Failed = append(res.Failed, s.Name)
			continue
		}
		res.Removed = append(res.Removed, s.Name)
	}
	if len(res.Failed) > 0 {
		return res, failure.Newf(failure.Engine, "see the warnings; rerun liftoff stacks gc (or --force when a cluster is gone)", "could not destroy %s", strings.Join(res.Failed, ", "))
	}
	return res, nil
}

func gcOne(ctx context.Context, d Deps, o GCOptions, stack string) (*DestroyResult, error) {
	cfg, err := o.Config(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("the config of preview %s: %w", stack, err)
	}
	if cfg.Preview == nil {
		return nil, failure.Newf(failure.Config, "destroy it with liftoff destroy --stack "+stack+" if it should go",
			"%s is tagged as an expired preview but its settings make it no preview (no previewOf): gc destroys previews only, and left it", stack)
	}
	return Destroy(ctx, d, DestroyOptions{Config: cfg, KubeDir: o.KubeDir, Force: o.Force})
}
