package launch

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// Stack tags a preview carries, and the same facts on its namespace, so
// that whoever looks at the cluster sees whose it is and until when.
const (
	TagPreviewOf   = "liftoff:preview-of"
	TagExpires     = "liftoff:expires"
	LabelPreviewOf = outputs.LabelPreviewOf
	LabelStack     = outputs.LabelStack
	AnnExpires     = "liftoff.dev/expires"
)

// checkPreviews refuses a new preview, before anything is created, when its
// parent (pst, opened by openParent) already has the most previews its
// liftoff:maxPreviews allows.
func checkPreviews(ctx context.Context, e *engine.Engine, cfg *config.Stack, pst *engine.Stack) error {
	parent := cfg.Preview.Of
	limit := 10
	switch v, _, err := pst.GetConfig(ctx, "liftoff:maxPreviews", false); {
	case failure.ClassOf(err) == failure.NotFound: // the default
	case err != nil:
		return err
	default:
		if limit, err = strconv.Atoi(v); err != nil {
			return failure.Newf(failure.Config, "liftoff config set -s "+parent+" maxPreviews 10", "liftoff:maxPreviews of %s is %q, not a number", parent, v)
		}
	}
	list, err := e.ListStacks(ctx)
	if err != nil {
		return fmt.Errorf("list the stacks: %w", err)
	}
	var others []string
	for _, s := range list {
		if s.Name != cfg.Name && s.Tags[TagPreviewOf] == parent {
			others = append(others, s.Name)
		}
	}
	if len(others) >= limit {
		return failure.New(failure.Config, fmt.Errorf("stack %s already has %d previews (%s), the most its liftoff:maxPreviews allows", parent, len(others), strings.Join(others, ", ")),
			"destroy one (liftoff destroy --stack NAME), collect expired ones (liftoff stacks gc), or raise maxPreviews on "+parent)
	}
	return nil
}

// OpenParent opens a preview's parent stack, refusing one that does not
// exist or was never stood up (it has no outputs to reuse). It opens none
// of the parent's secrets: a preview with a passphrase of its own opens it.
func OpenParent(ctx context.Context, e *engine.Engine, parent string) (*engine.Stack, error) {
	p, err := openParent(ctx, e, parent)
	if err != nil {
		return nil, err
	}
	return p.st, nil
}

// openedParent is a preview's parent stack as openParent read it.
type openedParent struct {
	st *engine.Stack
	// plain are its outputs that are not secret; sealed names the others.
	plain  engine.Outputs
	sealed []string
}

// openParent is OpenParent with what it read of the parent's outputs.
func openParent(ctx context.Context, e *engine.Engine, parent string) (*openedParent, error) {
	pst, err := e.Stack(ctx, parent, nil, false)
	if failure.ClassOf(err) == failure.NotFound {
		return nil, failure.New(failure.NotFound, fmt.Errorf("parent stack %s does not exist", parent),
			"stand the parent up first (liftoff up -s "+parent+"), or fix liftoff:previewOf")
	}
	if err != nil {
		return nil, err
	}
	plain, sealed, err := pst.PlainOutputs(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the outputs of parent %s: %w", parent, err)
	}
	if plain.String(outputs.Target) == "" {
		return nil, failure.Newf(failure.NotFound, "run liftoff up -s "+parent+" first", "parent stack %s has no outputs: it was never stood up", parent)
	}
	return &openedParent{st: pst, plain: plain, sealed: sealed}, nil
}

// tagPreview records the parent and the expiry on the stack; a rerun (a new
// push to the pull request) extends it.
func tagPreview(ctx context.Context, st *engine.Stack, cfg *config.Stack, expires time.Time) error {
	if err := st.SetTag(ctx, TagPreviewOf, cfg.Preview.Of); err != nil {
		return fmt.Errorf("tag preview %s: %w", cfg.Name, err)
	}
	return st.SetTag(ctx, TagExpires, expires.UTC().Format(time.RFC3339))
}

// labelPreview puts the parent and the expiry on the preview's namespace.
func labelPreview(t *Site, cfg *config.Stack, expires time.Time) {
	if t.NamespaceLabels == nil {
		t.NamespaceLabels = map[string]string{}
	}
	t.NamespaceLabels[LabelPreviewOf], t.NamespaceLabels[LabelStack] = cfg.Preview.Of, cfg.Name
	t.NamespaceAnnotations = map[string]string{AnnExpires: expires.UTC().Format(time.RFC3339)}
}

// Expired lists the previews whose expiry has passed at now. Only a stack
// tagged as a preview of a parent counts: an expiry tag alone (a stack that
// stopped being a preview, or a tag set by hand) never makes a stack
// collectable.
func Expired(list []engine.StackSummary, now time.Time) []engine.StackSummary {
	var out []engine.StackSummary
	for _, s := range list {
		if s.Tags[TagPreviewOf] == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, s.Tags[TagExpires]); err == nil && !t.After(now) {
			out = append(out, s)
		}
	}
	return out
}
