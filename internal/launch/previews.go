package launch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Stack tags a preview carries.
const (
	TagPreviewOf = "liftoff:preview-of"
	TagExpires   = "liftoff:expires"
)

// checkPreviews refuses a new preview when its parent already has the
// maximum number, before anything is created.
func checkPreviews(ctx context.Context, e *engine.Engine, cfg *config.Stack) error {
	list, err := e.ListStacks(ctx)
	if err != nil {
		return err
	}
	var others []string
	for _, s := range list {
		if s.Name != cfg.Name && s.Tags[TagPreviewOf] == cfg.Preview.Of {
			others = append(others, s.Name)
		}
	}
	if len(others) >= cfg.Preview.MaxPerStack {
		return failure.New(failure.Config, fmt.Errorf("stack %s already has %d previews (%s), the most liftoff:maxPreviews allows", cfg.Preview.Of, len(others), strings.Join(others, ", ")),
			"destroy one (liftoff destroy --stack NAME), collect expired ones (liftoff stacks gc), or raise maxPreviews on this stack")
	}
	return nil
}

// tagPreview records the parent and the expiry (now + TTL) on the stack; a
// rerun (a new push to the pull request) extends it.
func tagPreview(ctx context.Context, st *engine.Stack, cfg *config.Stack, now time.Time) error {
	if err := st.SetTag(ctx, TagPreviewOf, cfg.Preview.Of); err != nil {
		return err
	}
	return st.SetTag(ctx, TagExpires, now.Add(cfg.Preview.TTL).UTC().Format(time.RFC3339))
}

// Expired lists the stacks whose expiry has passed at now.
func Expired(list []engine.StackSummary, now time.Time) []engine.StackSummary {
	var out []engine.StackSummary
	for _, s := range list {
		if t, err := time.Parse(time.RFC3339, s.Tags[TagExpires]); err == nil && !t.After(now) {
			out = append(out, s)
		}
	}
	return out
}
