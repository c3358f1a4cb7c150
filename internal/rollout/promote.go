package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// dispose parks a slot that failed its checks; the live slot never saw traffic move.
func (e *Client) dispose(ctx context.Context, slot string, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.scale(cctx, slot, 0); err != nil {
		e.Log.Warnf("could not park the failed slot %s: %v", slot, err)
	}
	return cause
}

// promote flips traffic to target and schedules the old slot's scale-down.
func (e *Client) promote(ctx context.Context, target, live string, detach bool, res *Result) error {
	t0 := e.Now()
	if err := e.flip(ctx, target, live); err != nil {
		return err
	}
	res.Flip = e.Now().Sub(t0)
	res.FlipMillis = res.Flip.Milliseconds()
	res.Live, res.Promoted = target, true
	if err := e.retargetHPA(ctx, target); err != nil {
		e.Log.Warnf("the autoscaler still follows slot %s: %v (the next deploy points it at the live slot)", live, err)
	}
	if addr, err := e.Address(ctx, e.StableService()); err == nil {
		res.Address = addr
	}
	if live == "" || live == target {
		return nil
	}
	res.ScaleDownAt = e.Now().Add(e.ScaleDownDelay)
	return e.setScaleDownAt(ctx, live, res.ScaleDownAt)
}

// waitAndPark keeps the old slot warm for the scale-down delay, then parks it.
// Detached, or interrupted, the deferred scale-down stays recorded and the
// next liftoff command on the app carries it out.
func (e *Client) waitAndPark(ctx context.Context, target, old string, detach bool) error {
	if old == "" || old == target {
		return nil
	}
	if detach && e.ScaleDownDelay > 0 {
		e.Log.Infof("slot %s stays warm for %s (instant rollback); the next liftoff command after that parks it", old, e.ScaleDownDelay)
		return nil
	}
	if e.ScaleDownDelay > 0 {
		e.Log.Infof("keeping slot %s warm for %s so rollback is instant (Ctrl-C leaves it to the next liftoff command)", old, e.ScaleDownDelay)
		e.Log.Waiting(fmt.Sprintf("scale-down of %s at %s", old, e.Now().Add(e.ScaleDownDelay).Local().Format(time.TimeOnly)))
		select {
		case <-ctx.Done():
			return nil // the flip happened; parking is deferred, not lost
		case <-time.After(e.ScaleDownDelay):
		}
	}
	return e.parkDue(ctx, target)
}

// Promote flips traffic to the slot on the preview Service (after deploy --no-promote).
func (e *Client) Promote(ctx context.Context, detach bool) (res *Result, err error) {
	start := e.Now()
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: ActionPromote}
	say := e.announcement(start)
	defer func() {
		e.recordSlot(ctx, &rec, res)
		e.record(ctx, rec, start, res, err)
		say.send(ctx, rec, res, err)
	}()
	if err := e.settleShift(ctx); err != nil {
		return nil, err
	}
	live, _, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	target, _, err := e.serviceSlot(ctx, e.PreviewService())
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, failure.Newf(failure.NotFound, "deploy first: liftoff deploy --no-promote", "nothing to promote: %s has no preview slot", e.Ref.App)
	}
	res = &Result{Live: live, Previous: live, Slot: target, Service: e.StableService(), Preview: e.PreviewService()}
	if target == live {
		e.Log.Infof("slot %s is already live", target)
		return res, nil
	}
	if info, _ := e.releaseInfo(target); info != nil {
		res.Revision = info.Revision
	}
	if err := e.checkReady(ctx, target); err != nil {
		return nil, err
	}
	if err := e.promote(ctx, target, live, detach, res); err != nil {
		return nil, err
	}
	e.recordSlot(ctx, &rec, res)
	say.send(ctx, rec, res, nil)
	return res, e.waitAndPark(ctx, target, live, detach)
}

// checkReady verifies a slot has all its replicas ready right now.
func (e *Client) checkReady(ctx context.Context, slot string) error {
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return failure.Newf(failure.NotFound, "deploy it first", "slot %s has never been deployed", slot)
	}
	if err != nil {
		return err
	}
	want := ptr.Deref(d.Spec.Replicas, 0)
	if want == 0 || d.Status.ReadyReplicas < want || d.Status.ObservedGeneration < d.Generation {
		return failure.Newf(failure.Health, "deploy again, or wait until it is ready", "slot %s is not ready (%d/%d)", slot, d.Status.ReadyReplicas, want)
	}
	return nil
}

// Rollback moves traffic back to the previous slot: instantly while it is
// still warm, otherwise after scaling it back up (its release still holds the
// previous image).
func (e *Client) Rollback(ctx context.Context, detach bool) (res *Result, err error) {
	start := e.Now()
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: ActionRollback}
	say := e.announcement(start)
	defer func() {
		e.recordSlot(ctx, &rec, res)
		e.record(ctx, rec, start, res, err)
		say.send(ctx, rec, res, err)
	}()
	if err := e.recoverReleases(ctx); err != nil {
		return nil, err
	}
	live, ann, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	if live == "" {
		return nil, failure.Newf(failure.NotFound, "deploy first", "%s has no live slot in %s", e.Ref.App, e.Ref.Namespace)
	}
	prev := ann[AnnPrevious]
	if prev == "" {
		prev = Other(live)
	}
	info, err := e.releaseInfo(prev)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, failure.Newf(failure.NotFound, "there is nothing older to return to", "slot %s was never deployed", prev)
	}
	res = &Result{Live: live, Previous: live, Slot: prev, Service: e.StableService(), Preview: e.PreviewService(), Revision: info.Revision}
	good, err := e.lastGood(ctx, prev, info.Revision)
	if err != nil {
		return nil, err
	}
	if good != info.Revision {
		// A failed deploy left a release that never served in the slot:
		// go back to the slot's last release that was live and good.
		e.Log.Infof("slot %s holds revision %d, which was never live and good: restoring its revision %d, the last that was", prev, info.Revision, good)
		if err := e.setScaleDownAt(ctx, prev, time.Time{}); err != nil {
			return nil, err
		}
		if info, err = e.restoreRevision(ctx, prev, good); err != nil {
			return nil, err
		}
		res.Revision = info.Revision
		if err := e.waitReady(ctx, prev, int32(info.Replicas)); err != nil {
			return nil, e.dispose(ctx, prev, err)
		}
	} else if e.checkReady(ctx, prev) != nil {
		e.Log.Infof("slot %s is parked: scaling it back to %d replicas", prev, info.Replicas)
		if err := e.setScaleDownAt(ctx, prev, time.Time{}); err != nil {
			return nil, err
		}
		if err := e.scale(ctx, prev, int32(info.Replicas)); err != nil {
			return nil, err
		}
		if err := e.waitReady(ctx, prev, int32(info.Replicas)); err != nil {
			return nil, e.dispose(ctx, prev, err)
		}
	} else {
		e.setScaleDownAt(ctx, prev, time.Time{})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.promote(ctx, prev, live, detach, res); err != nil {
		return nil, err
	}
	if err := e.ensureService(ctx, e.PreviewService(), live, nil); err != nil {
		return nil, err
	}
	e.recordSlot(ctx, &rec, res)
	say.send(ctx, rec, res, nil)
	return res, e.waitAndPark(ctx, prev, live, detach)
}

// lastGood is the revision of slot's release that was last live and good:
// the newest one the release history records as deployed (or promoted,
// restored) with result ok. With no record of the slot at all (a history
// from before liftoff kept one), the current revision is taken as good.
func (e *Client) lastGood(ctx context.Context, slot string, current int) (int, error) {
	hist, err := e.History(ctx, 0)
	if err != nil {
		return 0, err
	}
	seen := false
	var bad []string
	for _, r := range hist {
		if r.Slot != slot {
			continue
		}
		seen = true
		if r.Result == "ok" && r.Revision > 0 {
			return r.Revision, nil
		}
		if r.Result == "failed" || r.Result == "rolled-back" {
			bad = append(bad, fmt.Sprintf("revision %d %s", r.Revision, r.Result))
		}
	}
	if !seen {
		return current, nil
	}
	return 0, failure.Newf(failure.NotFound, "there is no good release to return to: deploy one (liftoff releases lists what ran)",
		"slot %s never ran a release that was live and good (%s)", slot, strings.Join(bad, ", "))
}

// restoreRevision rolls a slot's Helm release back to revision (a new
// revision with its manifest, replicas included).
func (e *Client) restoreRevision(ctx context.Context, slot string, revision int) (*releaseInfo, error) {
	name := e.Release(slot)
	hist := action.NewHistory(e.helm)
	hist.Max = 20
	rels, err := hist.Run(name)
	if err != nil {
		return nil, fmt.Errorf("helm history %s: %w", name, err)
	}
	if !slices.ContainsFunc(rels, func(r *release.Release) bool { return r.Version == revision }) {
		return nil, failure.Newf(failure.NotFound, "deploy the release you want by its image: liftoff deploy --image (liftoff releases lists them)",
			"revision %d of %s, its last good release, is no longer in Helm's history (it keeps 10 per slot)", revision, name)
	}
	rb := action.NewRollback(e.helm)
	rb.Version, rb.Timeout, rb.MaxHistory = revision, 2*time.Minute, 10
	if err := rb.Run(name); err != nil {
		return nil, failure.New(failure.Engine, fmt.Errorf("helm rollback %s to revision %d: %w", name, revision, err), "see the error above")
	}
	return e.releaseInfo(slot)
}
