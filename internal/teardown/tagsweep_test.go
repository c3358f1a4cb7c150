package teardown

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// world is an in-memory cloud account: resources by kind, each tagged, some
// blocked by others, some (network interfaces) only detached a while after
// what they were attached to is deleted, as with load balancers.
type world struct {
	now       time.Time
	res       map[string]*fakeRes // "kind/id"
	order     []string            // successful deletes, in order
	attempts  map[string]int
	sleeps    []time.Duration
	listFails map[string]error
}

type fakeRes struct {
	kind, id string
	tags     map[string]string
	via      string
	// blockedBy: deleting fails with DependencyViolation while any of these exist.
	blockedBy []string
	// attachedTo: not listed (in use) until this is gone and detachDelay has passed.
	attachedTo  string
	detachDelay time.Duration
	// refuse: Delete fails with this, not a dependency.
	refuse error
}

func newWorld() *world {
	return &world{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), res: map[string]*fakeRes{}, attempts: map[string]int{}, listFails: map[string]error{}}
}

func tags(project, stack string) map[string]string {
	return map[string]string{TagProject: project, TagStack: stack, "kubernetes.io/cluster/x": "owned"}
}

func (w *world) add(r *fakeRes) *fakeRes {
	w.res[r.kind+"/"+r.id] = r
	return r
}

// gone tracks when each deleted resource went, for detach delays.
var _ Kind = kind{}

type kind struct {
	w    *world
	name string
	gone map[string]time.Time
}

func (k kind) Name() string { return k.name }

func (k kind) List(_ context.Context, stack string) ([]Resource, error) {
	if err := k.w.listFails[k.name]; err != nil {
		return nil, err
	}
	var out []Resource
	for _, r := range k.w.res {
		if r.kind != k.name || r.tags[TagStack] != stack { // the server-side tag filter
			continue
		}
		if r.attachedTo != "" {
			at, deleted := k.gone[r.attachedTo]
			if !deleted || k.w.now.Before(at.Add(r.detachDelay)) {
				continue
			}
		}
		out = append(out, Resource{ID: r.id, Tags: r.tags, Via: r.via})
	}
	slices.SortFunc(out, func(a, b Resource) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (k kind) Delete(_ context.Context, id string) error {
	key := k.name + "/" + id
	k.w.attempts[key]++
	r, ok := k.w.res[key]
	if !ok {
		return fmt.Errorf("%s %s: %w", k.name, id, ErrNotFound)
	}
	if r.refuse != nil {
		return r.refuse
	}
	for _, b := range r.blockedBy {
		if _, exists := k.w.res[b]; exists {
			return fmt.Errorf("DependencyViolation: resource %s has a dependent object (%s): %w", id, b, ErrDependency)
		}
	}
	delete(k.w.res, key)
	k.gone[key] = k.w.now
	k.w.order = append(k.w.order, key)
	return nil
}

func (w *world) kinds(names ...string) []Kind {
	gone := map[string]time.Time{}
	var out []Kind
	for _, n := range names {
		out = append(out, kind{w: w, name: n, gone: gone})
	}
	return out
}

func (w *world) sweep(t *testing.T, ctx context.Context, stack string, wait time.Duration) (*Receipt, error) {
	return TagSweep{Project: "shop", Stack: stack, Wait: wait, Log: &log{t: t},
		Kinds: w.kinds("load balancer", "target group", "network interface", "security group", "volume", "log group", "ecr repository"),
		Now:   func() time.Time { return w.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			w.sleeps = append(w.sleeps, d)
			w.now = w.now.Add(d)
			return nil
		},
	}.Sweep(ctx)
}

// TestTagSweep: only the project's stack's resources go, in dependency
// order; a security group held by a load balancer's network interface is
// retried with backoff until the interface detaches and is deleted.
func TestTagSweep(t *testing.T) {
	w := newWorld()
	mine, sibling, otherProject := tags("shop", "pr-42"), tags("shop", "pr-7"), tags("blog", "pr-42")
	w.add(&fakeRes{kind: "load balancer", id: "arn:nlb/pr-42", tags: mine})
	w.add(&fakeRes{kind: "target group", id: "arn:tg/pr-42", tags: mine, blockedBy: []string{"load balancer/arn:nlb/pr-42"}})
	w.add(&fakeRes{kind: "network interface", id: "eni-1", tags: mine, via: "in vpc-42", attachedTo: "load balancer/arn:nlb/pr-42", detachDelay: 40 * time.Second})
	w.add(&fakeRes{kind: "security group", id: "sg-lb", tags: mine, blockedBy: []string{"network interface/eni-1"}})
	w.add(&fakeRes{kind: "volume", id: "vol-pvc", tags: mine})
	w.add(&fakeRes{kind: "log group", id: "/aws/eks/pr-42/cluster", tags: mine})
	w.add(&fakeRes{kind: "ecr repository", id: "shop-pr-42", tags: mine})
	w.add(&fakeRes{kind: "load balancer", id: "arn:nlb/pr-7", tags: sibling})
	w.add(&fakeRes{kind: "volume", id: "vol-blog", tags: otherProject})

	rec, err := w.sweep(t, context.Background(), "pr-42", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Clean() {
		t.Fatalf("left: %v", rec.Left)
	}
	if len(rec.Removed) != 7 {
		t.Errorf("removed %v, want the 7 resources of shop/pr-42", rec.Removed)
	}
	for _, key := range []string{"load balancer/arn:nlb/pr-7", "volume/vol-blog"} {
		if w.res[key] == nil {
			t.Errorf("%s is not this stack's and was deleted", key)
		}
		if w.attempts[key] != 0 {
			t.Errorf("%s: %d delete attempts, want none", key, w.attempts[key])
		}
	}
	pos := func(key string) int { return slices.Index(w.order, key) }
	for _, before := range [][2]string{{"load balancer/arn:nlb/pr-42", "target group/arn:tg/pr-42"}, {"network interface/eni-1", "security group/sg-lb"}} {
		if pos(before[0]) < 0 || pos(before[0]) > pos(before[1]) {
			t.Errorf("%s deleted after %s: order %v", before[0], before[1], w.order)
		}
	}
	if n := w.attempts["security group/sg-lb"]; n < 2 {
		t.Errorf("security group deleted in %d attempt(s): the DependencyViolation was not retried", n)
	}
	// The interface detaches 40s after the load balancer goes: rounds back off 5s, 10s, 20s, 40s.
	if want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second}; len(w.sleeps) < 3 || !slices.Equal(w.sleeps[:3], want) {
		t.Errorf("backoff %v, want it to start %v", w.sleeps, want)
	}
	if rec.Removed[len(rec.Removed)-1].Name != "sg-lb" || !slices.ContainsFunc(rec.Removed, func(i Item) bool { return i.Name == "eni-1 (in vpc-42)" }) {
		t.Errorf("receipt removed: %v", rec.Removed)
	}
}

// TestTagSweepLeft: what stays in use past the bounded wait, what AWS
// refuses, and a kind that cannot be listed are left, each with why; the
// refused one is tried once, not on every round.
func TestTagSweepLeft(t *testing.T) {
	w := newWorld()
	mine := tags("shop", "pr-42")
	w.add(&fakeRes{kind: "security group", id: "sg-held", tags: mine, blockedBy: []string{"instance/i-not-ours"}})
	w.res["instance/i-not-ours"] = &fakeRes{kind: "instance", id: "i-not-ours", tags: tags("shop", "other")}
	w.add(&fakeRes{kind: "volume", id: "vol-denied", tags: mine, refuse: errors.New("UnauthorizedOperation: not allowed to ec2:DeleteVolume")})
	w.add(&fakeRes{kind: "volume", id: "vol-free", tags: mine})
	w.listFails["log group"] = errors.New("AccessDeniedException: logs:DescribeLogGroups")

	rec, err := w.sweep(t, context.Background(), "pr-42", 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(rec.Removed); !slices.Equal(got, []string{"volume vol-free"}) {
		t.Errorf("removed %v", got)
	}
	want := []string{"log group * (could not list: AccessDeniedException", "security group sg-held (DependencyViolation", "volume vol-denied (UnauthorizedOperation"}
	if len(rec.Left) != len(want) {
		t.Fatalf("left %v, want %v", rec.Left, want)
	}
	for i, it := range rec.Left {
		if !strings.HasPrefix(it.String(), want[i]) {
			t.Errorf("left[%d] = %q, want %q...", i, it, want[i])
		}
	}
	if n := w.attempts["volume/vol-denied"]; n != 1 {
		t.Errorf("refused volume tried %d times, want once", n)
	}
	var slept time.Duration
	for _, d := range w.sleeps {
		slept += d
	}
	if slept != 2*time.Minute {
		t.Errorf("waited %s in all, want exactly the 2m bound", slept)
	}
	if !strings.Contains(rec.Text(), "LEFT 3:") {
		t.Errorf("receipt:\n%s", rec.Text())
	}
}

// TestTagSweepInterrupted: a cancelled sweep stops between rounds with the context's error.
func TestTagSweepInterrupted(t *testing.T) {
	w := newWorld()
	w.add(&fakeRes{kind: "security group", id: "sg-held", tags: tags("shop", "pr-42"), blockedBy: []string{"instance/i"}})
	w.res["instance/i"] = &fakeRes{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.sweep(t, ctx, "pr-42", time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
