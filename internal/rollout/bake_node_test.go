package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// Bounds the bake promises on the real node (window 12s, a read of the
// pods' metrics every second, under load of 8 clients on new connections).
// The 5% release is judged as soon as 100 requests are in (about a second
// at this load); the +300ms one answers about 26 requests a second to 8
// clients, so it takes about 4 s to reach them.
const (
	errorsDetectWithin  = 3 * time.Second
	latencyDetectWithin = 10 * time.Second
	stepShareSlack      = 0.15 // a step's measured share of new connections, within this of k/(k+live)
)

// TestBakeOnRealNode: the shortener on a real node under load through its
// live Service. A good release survives its bake with 0 failed requests; a
// release that answers 500 to 5% of requests, and one that adds 300ms to
// each, pass the smoke test, are flipped, then rolled back by the bake
// (exit class health, the previous slot live again, the bad one parked,
// "rolled-back" in the history); a gradual shift 10/50/100 gives the new
// slot the share of new connections its pods make; Ctrl-C during a bake
// leaves the release live and says how to roll back.
func TestBakeOnRealNode(t *testing.T) {
	cl, e, rec, ref, secret := realNodeApp(t, "bake")
	ctx := context.Background()
	bake := BakeOptions{Window: 12 * time.Second, Interval: time.Second}
	round := 0
	// The scenarios that judge something else than latency (errors, the
	// steps' shares) allow a p99 of 1s: on two cores shared with the other
	// packages' real nodes a good release's p99 has reached 258ms for a few
	// seconds, which is the machine, not the release. The good release and
	// the +300ms one are judged at the default limit.
	lenient := bake
	lenient.MaxP99 = time.Second
	release := func(env map[string]string, steps []int) DeployOptions {
		round++
		b := bake
		if steps != nil || env["FAULT_INJECT"] == "errors=5%" {
			b = lenient
		}
		return DeployOptions{Image: ref, Detach: true, SecretData: secret, Env: env, Bake: b, Steps: steps,
			Values: map[string]any{"podAnnotations": map[string]any{"test.liftoff.dev/round": fmt.Sprint(round)}}}
	}
	if _, err := e.Deploy(ctx, release(nil, nil)); err != nil {
		t.Fatal(err)
	}
	svc, err := cl.Client.CoreV1().Services("bake").Get(ctx, "shortener", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + svc.Spec.ClusterIP
	waitFor(t, "the live Service answers", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, base); return err == nil })
	load := testenv.StartFreshLoad(base+"/"+benchLink(t, base), 8, func(s int) bool { return s == http.StatusFound })
	defer load.Stop()

	attempt := func(name string, o DeployOptions) (*Result, error, testenv.LoadStats) {
		t.Helper()
		before := load.Stats()
		prev := live(t, e)
		res, err := e.Deploy(ctx, o)
		time.Sleep(2 * time.Second) // kube-proxy converges within about a second: what the old rules still send belongs to this attempt
		st := load.Stats().Since(before)
		t.Logf("%s: %v; live %s -> %s; load: %s", name, err, prev, live(t, e), st)
		if res != nil {
			for _, b := range res.Bake {
				t.Logf("%s: bake at %d%%: %s (detect %d ms, rolled back in %d ms)", name, b.Step, b, b.DetectMS, b.RolledBackMS)
			}
		}
		return res, err, st
	}

	res, err, st := attempt("good release", release(nil, nil))
	if err != nil || len(res.Bake) != 1 || res.Bake[0].Verdict != BakePassed || st.Failed != 0 || live(t, e) != res.Slot {
		t.Fatalf("a good release must survive its bake with 0 failed requests: %v %+v %s", err, res, st)
	}

	for _, bad := range []struct {
		name, fault, cause string
		within             time.Duration
	}{
		{"5% of requests answer 500", "errors=5%", "5xx", errorsDetectWithin},
		{"300ms added to every request", "delay=300ms", "p99 latency", latencyDetectWithin},
	} {
		good := live(t, e)
		res, err, st := attempt(bad.name, release(map[string]string{"FAULT_INJECT": bad.fault}, nil))
		if failure.ClassOf(err) != failure.Health || !errors.Is(err, ErrBake) || !strings.Contains(err.Error(), bad.cause) || res == nil || !res.RolledBack {
			t.Fatalf("%s: want a rollback by the bake naming %q, got %v", bad.name, bad.cause, err)
		}
		b := res.Bake[len(res.Bake)-1]
		if b.Verdict != BakeFailed || time.Duration(b.DetectMS)*time.Millisecond > bad.within {
			t.Errorf("%s: bake %s after %d ms (want failed within %s)", bad.name, b, b.DetectMS, bad.within)
		}
		if live(t, e) != good {
			t.Errorf("%s: traffic is on %s, not back on %s", bad.name, live(t, e), good)
		}
		if d, _ := replicas(t, e, res.Slot); d != 0 {
			t.Errorf("%s: the rolled-back slot %s was not parked (%d replicas)", bad.name, res.Slot, d)
		}
		if h, _ := e.History(ctx, 1); h[0].Result != "rolled-back" || !strings.Contains(h[0].Bake, "failed") {
			t.Errorf("%s: history: %+v", bad.name, h[0])
		}
		// Only the bad release's own errors, while it was live: a 5% release
		// fails at most its share of what it answered.
		if bad.fault == "errors=5%" && (st.Failed == 0 || float64(st.Failed) > 0.05*float64(st.Total)+5) {
			t.Errorf("%s: %d of %d requests failed during the attempt", bad.name, st.Failed, st.Total)
		}
		if bad.fault != "errors=5%" && st.Failed != 0 {
			t.Errorf("%s: %d requests failed", bad.name, st.Failed)
		}
	}

	// Gradual shift: the live Service's annotation says the step; a probe
	// on new connections says which slot answered.
	p := startSlotProbe(base, 20*time.Millisecond)
	type mark struct {
		at   time.Time
		step string
	}
	var (
		mu    sync.Mutex
		marks []mark
	)
	stopMarks := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopMarks:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s, _ := cl.Client.CoreV1().Services("bake").Get(ctx, "shortener", metav1.GetOptions{})
			if s != nil {
				mu.Lock()
				marks = append(marks, mark{time.Now(), s.Annotations[AnnShift]})
				mu.Unlock()
			}
		}
	}()
	old := live(t, e)
	res, err, st = attempt("steps 10,50,100", release(nil, []int{10, 50, 100}))
	close(stopMarks)
	p.stop()
	if err != nil || st.Failed != 0 || len(res.Bake) != 3 || res.Bake[0].Step != 10 || res.Bake[1].Step != 50 || res.Bake[2].Step != 100 || live(t, e) != res.Slot {
		t.Fatalf("steps: %v %+v %s", err, res, st)
	}
	for _, pct := range []int{10, 50} {
		tag := fmt.Sprintf("%s>%s@%d", old, res.Slot, pct)
		var from, to time.Time
		for _, m := range marks {
			if m.step == tag {
				if from.IsZero() {
					from = m.at
				}
				to = m.at
			}
		}
		var mine, all int
		for _, a := range p.answers {
			if a.at.After(from.Add(1500*time.Millisecond)) && a.at.Before(to) && (a.slot == Blue || a.slot == Green) { // kube-proxy settles within ~1s
				all++
				if a.slot == res.Slot {
					mine++
				}
			}
		}
		_, want := StepPods(pct, 2, 2)
		got := float64(mine) / float64(max(all, 1))
		t.Logf("step %d%%: slot %s answered %d of %d new connections (%.1f%%; pods give %.1f%%)", pct, res.Slot, mine, all, 100*got, 100*want)
		if all < 100 || math.Abs(got-want) > stepShareSlack {
			t.Errorf("step %d%%: share %.3f of %d answers, want %.3f ± %.2f", pct, got, all, want, stepShareSlack)
		}
	}

	// Ctrl-C during the bake: the release stays live, the error says how to go back.
	cctx, cancel := context.WithCancel(ctx)
	o := release(nil, nil)
	o.Bake.Window = time.Minute
	go func() {
		waitFor(t, "the bake starts", func() bool { return rec.has("for 1m0s: rolls back") })
		time.Sleep(2 * time.Second)
		cancel()
	}()
	prev := live(t, e)
	res, err = e.Deploy(cctx, o)
	if failure.ClassOf(err) != failure.Interrupted || !strings.Contains(failure.FixOf(err), "liftoff rollback moves traffic back to slot "+prev) || live(t, e) == prev {
		t.Errorf("Ctrl-C during the bake: %v (fix: %s; live %s)", err, failure.FixOf(err), live(t, e))
	}
	if s := load.Stop(); s.Failed > 0 {
		t.Logf("in all: %s", s)
	}
}
