package teardown

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// The tags a target's cloud provider puts on everything (defaultTags), and
// the load balancer and volume controllers on what they create for the stack.
const (
	TagProject = outputs.TagProject
	TagStack   = outputs.TagStack
)

// Errors a Kind's Delete wraps so the sweep knows what to do.
var (
	// ErrDependency: something still uses the resource (DependencyViolation,
	// ResourceInUse); the sweep retries it after deleting the rest.
	ErrDependency = errors.New("still in use")
	// ErrNotFound: already gone; counted as removed.
	ErrNotFound = errors.New("not found")
)

// Resource is one cloud resource a Kind found.
type Resource struct {
	ID   string
	Tags map[string]string
	// Via says how it was found when not by its own tags, e.g. "in vpc-1":
	// Tags are then those of what it was found through.
	Via string
}

// Kind is one class of cloud resource, behind the two calls the sweep needs.
type Kind interface {
	// Name is the receipt's kind, e.g. "load balancer".
	Name() string
	// List returns the resources that carry liftoff:stack=stack (and those
	// found through something that does), with their tags.
	List(ctx context.Context, stack string) ([]Resource, error)
	// Delete deletes one; errors wrap ErrDependency or ErrNotFound when they mean that.
	Delete(ctx context.Context, id string) error
}

// TagSweep sweeps one stack's leftovers in a cloud account after the
// engine's destroy, by the stack's tags: what controllers created outside
// Pulumi (load balancers, target groups, volumes, network interfaces) and
// what a failed destroy left. Kinds run in
// dependency order, every round; what is still in use is retried with
// backoff until Wait runs out.
type TagSweep struct {
	Project, Stack string
	// Kinds in deletion order, as the target lists them.
	Kinds []Kind
	// Wait bounds the retries (default 10m); Backoff is the first pause
	// between rounds (default 5s, doubling up to 1m).
	Wait, Backoff time.Duration
	Log           Reporter
	// Now and Sleep are the clock; tests substitute them.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Sweep deletes every resource of the Kinds tagged with both the project and
// the stack (a resource of another project's stack of the same name is not
// ours), and returns the receipt. Only ctx's error is returned as an error.
func (a TagSweep) Sweep(ctx context.Context) (*Receipt, error) {
	wait, backoff := a.Wait, a.Backoff
	if wait == 0 {
		wait = 10 * time.Minute
	}
	if backoff == 0 {
		backoff = 5 * time.Second
	}
	now, sleep := a.Now, a.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	deadline := now().Add(wait)
	rec := &Receipt{}
	failed := map[string]Item{} // kind/id -> refused for good (not in use: access, validation)
	for round := 1; ; round++ {
		var busy []Item
		for _, k := range a.Kinds {
			if err := ctx.Err(); err != nil {
				return rec, err
			}
			found, err := k.List(ctx, a.Stack)
			if err != nil {
				if ctx.Err() != nil {
					return rec, ctx.Err()
				}
				failed[k.Name()+"/*"] = Item{Kind: k.Name(), Name: "*", Why: "could not list: " + err.Error()}
				continue
			}
			delete(failed, k.Name()+"/*")
			for _, r := range found {
				if r.Tags[TagStack] != a.Stack || r.Tags[TagProject] != a.Project {
					continue
				}
				key := k.Name() + "/" + r.ID
				if _, ok := failed[key]; ok {
					continue
				}
				name := r.ID
				if r.Via != "" {
					name += " (" + r.Via + ")"
				}
				err := k.Delete(ctx, r.ID)
				switch {
				case err == nil || errors.Is(err, ErrNotFound):
					rec.Removed = append(rec.Removed, Item{Kind: k.Name(), Name: name})
					a.Log.Infof("deleted %s %s", k.Name(), name)
				case errors.Is(err, ErrDependency):
					busy = append(busy, Item{Kind: k.Name(), Name: name, Why: err.Error()})
				case ctx.Err() != nil:
					return rec, ctx.Err()
				default:
					failed[key] = Item{Kind: k.Name(), Name: name, Why: err.Error()}
				}
			}
		}
		if len(busy) == 0 || !now().Before(deadline) {
			rec.Left = append(rec.Left, busy...)
			for _, it := range failed {
				rec.Left = append(rec.Left, it)
			}
			sort.Slice(rec.Left, func(i, j int) bool { return rec.Left[i].String() < rec.Left[j].String() })
			return rec, nil
		}
		a.Log.Waiting(fmt.Sprintf("round %d: %d resource(s) still in use, e.g. %s", round, len(busy), busy[0]))
		if err := sleep(ctx, min(backoff, deadline.Sub(now()))); err != nil {
			return rec, err
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
