package launch

import (
	"context"
	"time"

	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// announcer tells the stack's team channel (liftoff:notify) what each
// release action did; the printer says where it went.
func announcer(s notify.Sender, stack, app string, p *ui.Printer) rollout.Announcer {
	return func(ctx context.Context, r rollout.Record, res *rollout.Result) error {
		rel := notify.Release{App: app, Stack: stack, Action: r.Action, Result: r.Result, Slot: r.Slot, Image: r.Image, Digest: r.Digest,
			Who: r.Who, Duration: time.Duration(r.DurationMS) * time.Millisecond, Bake: r.Bake, Cause: r.Error}
		if res != nil {
			rel.Live, rel.Previous, rel.WarmUntil = res.Live, res.Previous, res.ScaleDownAt
		}
		if err := s.Send(ctx, rel.Message()); err != nil {
			return err
		}
		p.Infof("announced the %s (%s) on %s", r.Action, r.Result, s.Dest.Kind)
		return nil
	}
}
