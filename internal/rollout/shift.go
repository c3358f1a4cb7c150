package rollout

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// AnnShift, on the live Service during a gradual shift, is "from>to@step":
// the Service selects both slots' pods, and a run that finds it (after an
// interrupted one) puts traffic back on "from".
const AnnShift = "liftoff.dev/shift"

// ValidSteps checks a gradual shift's steps: percentages, rising, ending at 100.
func ValidSteps(steps []int) error {
	if len(steps) == 0 {
		return nil
	}
	for i, p := range steps {
		if p <= 0 || p > 100 || (i > 0 && p <= steps[i-1]) {
			return failure.Newf(failure.Config, "give rising percentages ending at 100, e.g. --steps 10,50,100",
				"steps %v: %d is not a rising percentage", steps, p)
		}
	}
	if steps[len(steps)-1] != 100 {
		return failure.Newf(failure.Config, "end the steps at 100, e.g. --steps 10,50,100", "steps %v do not end at 100", steps)
	}
	return nil
}

// StepPods is the replica arithmetic of a gradual shift: with live pods of
// the old slot behind the live Service, the new slot gets k pods so that
// k/(k+live) is nearest to pct% (at least 1, at most its full count n). A
// Service spreads new connections evenly over its ready pods, so the new
// slot's share of new connections is k/(k+live), which it returns.
func StepPods(pct, live, n int) (k int, share float64) {
	if live <= 0 {
		return n, 1
	}
	k = int(math.Round(float64(pct) * float64(live) / float64(100-pct)))
	k = min(max(k, 1), n)
	return k, float64(k) / float64(k+live)
}

// shift moves traffic to the new slot in steps below 100: at each, the live
// Service selects both slots, with the new slot scaled to its share of the
// pods, and the bake judges the new slot's traffic. A breach (or Ctrl-C)
// puts all traffic back on the old slot and parks the new one. The caller
// flips for the last step (100).
func (d *deployment) shift(ctx context.Context) error {
	e := d.e
	ld, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(d.live), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("live slot %s: %w", d.live, err)
	}
	live := int(ptr.Deref(ld.Spec.Replicas, 0))
	for _, pct := range d.o.Steps {
		if pct >= 100 {
			break
		}
		k, share := StepPods(pct, live, d.o.Replicas)
		if err := e.scale(ctx, d.slot, int32(k)); err != nil {
			return err
		}
		if err := e.waitReady(ctx, d.slot, int32(k)); err != nil {
			return d.unshift(err)
		}
		ann := map[string]any{AnnShift: fmt.Sprintf("%s>%s@%d", d.live, d.slot, pct)}
		if err := e.ensureService(ctx, e.StableService(), "", ann); err != nil {
			return d.unshift(err)
		}
		e.Log.Infof("step %d%%: %s/%s selects both slots: %d pods of %s, %d of %s (%.0f%% of new connections)",
			pct, e.Ref.Namespace, e.StableService(), k, d.slot, live, d.live, 100*share)
		r, err := e.bake(ctx, d.slot, d.o.Bake, pct)
		d.res.Bake = append(d.res.Bake, r)
		if err != nil {
			if ctx.Err() != nil {
				return d.unshift(failure.New(failure.Interrupted, fmt.Errorf("interrupted at step %d%% of the shift to slot %s", pct, d.slot),
					fmt.Sprintf("traffic is back on slot %s; deploy again to retry", d.live)))
			}
			return d.unshift(err)
		}
		if r.Verdict == BakeFailed {
			t0 := e.Now()
			uerr := d.unshift(nil)
			d.res.Bake[len(d.res.Bake)-1].RolledBackMS = e.Now().Sub(t0).Milliseconds()
			d.res.RolledBack = true
			if uerr != nil {
				return uerr
			}
			return bakeFailed(d.slot, d.live, d.res.Bake[len(d.res.Bake)-1])
		}
	}
	if err := e.scale(ctx, d.slot, int32(d.o.Replicas)); err != nil {
		return d.unshift(err)
	}
	if err := e.waitReady(ctx, d.slot, int32(d.o.Replicas)); err != nil {
		return d.unshift(err)
	}
	return nil
}

// unshift puts all traffic back on the old slot and parks the new one,
// even when ctx has ended; it returns cause (or why it could not).
func (d *deployment) unshift(cause error) error {
	e := d.e
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.ensureService(ctx, e.StableService(), d.live, map[string]any{AnnShift: nil}); err != nil {
		return fmt.Errorf("put traffic back on slot %s: %w (after: %v)", d.live, err, cause)
	}
	e.Log.Infof("traffic is back on slot %s", d.live)
	return e.dispose(ctx, d.slot, cause)
}

// settleShift finishes what an interrupted gradual shift left: traffic
// goes back on the slot it was moving from. Called under the deploy lock.
func (e *Client) settleShift(ctx context.Context) error {
	svc, err := e.Kube.CoreV1().Services(e.Ref.Namespace).Get(ctx, e.StableService(), metav1.GetOptions{})
	if err != nil || svc.Spec.Selector[LabelSlot] != "" || svc.Annotations[AnnShift] == "" {
		return nil
	}
	from, rest, _ := strings.Cut(svc.Annotations[AnnShift], ">")
	to, _, _ := strings.Cut(rest, "@")
	if !slices.Contains([]string{Blue, Green}, from) || !slices.Contains([]string{Blue, Green}, to) {
		return fmt.Errorf("service %s: annotation %s=%q is not from>to@step", e.StableService(), AnnShift, svc.Annotations[AnnShift])
	}
	e.Log.Warnf("an interrupted gradual shift left %s selecting both slots: putting traffic back on %s and parking %s", e.StableService(), from, to)
	if err := e.ensureService(ctx, e.StableService(), from, map[string]any{AnnShift: nil}); err != nil {
		return err
	}
	return e.scale(ctx, to, 0)
}
