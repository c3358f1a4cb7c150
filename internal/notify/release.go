package notify

import (
	"fmt"
	"strings"
	"time"
)

// Release is what one release action did, as a team channel hears of it.
type Release struct {
	App, Stack string
	// Action is deploy, promote, rollback or secrets; Result is ok, ready,
	// already-live, rolled-back, failed or interrupted (the release
	// history's words).
	Action, Result string
	// Slot is the slot the action deployed or moved traffic to; Live the
	// one serving afterwards; Previous the one that served before.
	Slot, Live, Previous string
	Image, Digest        string
	Who                  string
	Duration             time.Duration
	// Bake is the bake's verdict with its figures; Cause why it failed.
	Bake, Cause string
	// WarmUntil is when the previous slot is parked: until then rollback
	// is instant (zero: not warm).
	WarmUntil time.Time
}

// Message renders r: a title that says what happened and where, then the
// slot, the release, who and how long, the bake, the cause, and the way back
// while there is one.
func (r Release) Message() Message {
	where := r.App
	if r.Stack != "" {
		where += " (" + r.Stack + ")"
	}
	verb := map[string]string{"deploy": "deploy", "promote": "promote", "rollback": "rollback", "secrets": "secrets change"}[r.Action]
	if verb == "" {
		verb = r.Action
	}
	var title string
	switch r.Result {
	case "ok":
		title = fmt.Sprintf("%s: %s done, slot %s is live", where, verb, r.Live)
	case "ready":
		title = fmt.Sprintf("%s: %s ready on slot %s, not live yet (liftoff promote)", where, verb, r.Slot)
	case "already-live":
		title = fmt.Sprintf("%s: %s changed nothing, slot %s already runs it", where, verb, r.Live)
	case "rolled-back":
		title = fmt.Sprintf("%s: %s ROLLED BACK by its bake, slot %s is live again", where, verb, r.Live)
	case "interrupted":
		title = fmt.Sprintf("%s: %s interrupted", where, verb)
	default:
		title = fmt.Sprintf("%s: %s FAILED", where, verb)
		if r.Live != "" {
			title += fmt.Sprintf(", slot %s keeps serving", r.Live)
		}
	}
	var lines []string
	add := func(k, v string) {
		if v != "" {
			lines = append(lines, k+": "+v)
		}
	}
	slot := r.Slot
	if slot != "" && r.Previous != "" && r.Previous != slot {
		slot += " (previously live: " + r.Previous + ")"
	}
	add("slot", slot)
	release := r.Digest
	if release == "" {
		release = r.Image
	} else if repo, _, ok := strings.Cut(r.Image, "@"); ok {
		release = repo + "@" + r.Digest
	}
	add("release", release)
	add("by", r.Who)
	if r.Duration > 0 {
		add("took", r.Duration.Round(100*time.Millisecond).String())
	}
	add("bake", r.Bake)
	add("cause", r.Cause)
	if !r.WarmUntil.IsZero() && r.Previous != "" && r.Previous != r.Live {
		cmd := "liftoff rollback"
		if r.Stack != "" {
			cmd += " --stack " + r.Stack
		}
		add("undo", fmt.Sprintf("%s (instant while slot %s is warm, until %s)", cmd, r.Previous, r.WarmUntil.UTC().Format("15:04 MST")))
	}
	return Message{Title: title, Lines: lines}
}
