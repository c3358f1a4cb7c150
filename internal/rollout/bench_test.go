package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	imagebuild "github.com/liftoff-dev/liftoff/internal/image"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// BenchmarkDeployKwok is the first half of `make bench-deploy`: on the test cluster (real
// control plane, kwok nodes, 2 replicas per slot, smoke test off because kwok
// pods cannot answer), it times deploy start to flip (no image build), the
// flip itself, and a rollback to the warm slot. b.N is ignored; five rounds.
func BenchmarkDeployKwok(b *testing.B) {
	e, _ := newEngine(b, "bench-deploy-kwok")
	e.ScaleDownDelay = time.Hour // keep the old slot warm: rollback is a flip
	ctx := context.Background()
	var toFlip, flips, rollbacks []time.Duration
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(999), Detach: true}); err != nil { // a live slot to start from
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range 5 {
		res, err := e.Deploy(ctx, DeployOptions{Image: image(1000 + i), Detach: true})
		if err != nil {
			b.Fatal(err)
		}
		toFlip, flips = append(toFlip, res.ToFlip), append(flips, res.Flip)
		start := time.Now()
		if _, err := e.Rollback(ctx, true); err != nil {
			b.Fatal(err)
		}
		rollbacks = append(rollbacks, time.Since(start))
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("\nbench-deploy (kwok): 5 rounds on simulated nodes (2 replicas per slot, no image build, smoke off)\n")
	fmt.Printf("  %-34s median %-9s max %-9s (target < 15s)\n", "deploy start to flip", med(toFlip).Round(time.Millisecond), slices.Max(toFlip).Round(time.Millisecond))
	fmt.Printf("  %-34s median %-9s max %-9s (target < 1s)\n", "flip (stable Service patch)", med(flips).Round(time.Millisecond), slices.Max(flips).Round(time.Millisecond))
	fmt.Printf("  %-34s median %-9s max %-9s (target < 1s)\n", "rollback to the warm slot", med(rollbacks).Round(time.Millisecond), slices.Max(rollbacks).Round(time.Millisecond))
	b.ReportMetric(med(toFlip).Seconds(), "to-flip-s")
	b.ReportMetric(float64(med(flips).Milliseconds()), "flip-ms")
	b.ReportMetric(float64(med(rollbacks).Milliseconds()), "rollback-ms")
}

// BenchmarkDeploy is the second half of `make bench-deploy`: on a real node, the shortener (2
// replicas per slot, real PostgreSQL and Redis, smoke test on) under load
// through its live Service, five rounds of a deploy (new pods each time)
// and a rollback to the warm slot. It reports deploy start to flip; flip to
// every new connection answered by the new slot (kube-proxy convergence,
// probed on a new connection every 5ms); rollback time; and failed requests
// of the load across every flip. b.N is ignored.
func BenchmarkDeploy(b *testing.B) {
	cl, e, _, ref, secret := realNodeApp(b, "bench")
	ctx := context.Background()
	round := func(i int) DeployOptions {
		return DeployOptions{Image: ref, Detach: true, SecretData: secret,
			Values: map[string]any{"podAnnotations": map[string]any{"bench.liftoff.dev/round": fmt.Sprint(i)}}} // new pods every round
	}
	if _, err := e.Deploy(ctx, round(0)); err != nil { // a live slot to start from
		b.Fatal(err)
	}
	svc, err := cl.Client.CoreV1().Services("bench").Get(ctx, "shortener", metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	base := "http://" + svc.Spec.ClusterIP
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if _, err := testenv.Slot(&http.Client{Timeout: time.Second}, base); err == nil {
			break
		} else if time.Since(start) > time.Minute {
			b.Fatalf("the live Service never answered: %v", err)
		}
	}
	load := testenv.StartLoad(base+"/"+benchLink(b, base), 8, func(s int) bool { return s == http.StatusFound })
	p := startSlotProbe(base, 5*time.Millisecond)

	var toFlip, converge, rollbacks, rbConverge []time.Duration
	b.ResetTimer()
	for i := range 5 {
		start := time.Now()
		res, err := e.Deploy(ctx, round(i+1))
		if err != nil {
			b.Fatal(err)
		}
		toFlip = append(toFlip, res.ToFlip)
		converge = append(converge, p.converged(start.Add(res.ToFlip-res.Flip), res.Live))
		start = time.Now()
		res, err = e.Rollback(ctx, true)
		if err != nil {
			b.Fatal(err)
		}
		rollbacks = append(rollbacks, time.Since(start))
		rbConverge = append(rbConverge, p.converged(start, res.Live))
	}
	b.StopTimer()
	p.stop()
	st := load.Stop()

	// The bake: three releases that answer 500 to 5% of requests, each
	// flipped under load of 8 clients on new connections, then rolled back
	// by the bake (reading the pods' metrics every second).
	fresh := testenv.StartFreshLoad(load.URL(), 8, func(s int) bool { return s == http.StatusFound })
	var detect, rolled []time.Duration
	var badFailed, badTotal int64
	for i := range 3 {
		o := round(10 + i)
		o.Env, o.Bake = map[string]string{"FAULT_INJECT": "errors=5%"}, BakeOptions{Window: 30 * time.Second, Interval: time.Second}
		before := fresh.Stats()
		res, err := e.Deploy(ctx, o)
		if !errors.Is(err, ErrBake) || res == nil || len(res.Bake) == 0 {
			b.Fatalf("the 5%% release was not rolled back by its bake: %v", err)
		}
		time.Sleep(2 * time.Second) // kube-proxy converges: what the old rules still send counts
		got := fresh.Stats().Since(before)
		badFailed, badTotal = badFailed+got.Failed, badTotal+got.Total
		bk := res.Bake[len(res.Bake)-1]
		detect, rolled = append(detect, time.Duration(bk.DetectMS)*time.Millisecond), append(rolled, time.Duration(bk.RolledBackMS)*time.Millisecond)
	}
	fresh.Stop()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	row := func(what string, ds []time.Duration) {
		fmt.Printf("  %-48s median %-9s max %s\n", what, med(ds).Round(time.Millisecond), slices.Max(ds).Round(time.Millisecond))
	}
	fmt.Printf("\nbench-deploy: 5 rounds on a real node (2 replicas per slot, new pods each deploy, smoke test on, load on 8 kept-alive connections)\n")
	row("deploy start to flip", toFlip)
	row("flip to every new connection on the new slot", converge)
	row("rollback to the warm slot (flip)", rollbacks)
	row("rollback to every new connection on the old slot", rbConverge)
	fmt.Printf("  %-48s %s\n", "load across all flips", st)
	row("bake: 5% release, flip to breach found", detect)
	row("bake: breach to traffic back on the old slot", rolled)
	fmt.Printf("  %-48s %d of %d (8 clients on new connections, 3 attempts)\n", "bake: requests failed by the 5% release", badFailed, badTotal)
	fmt.Printf("bench-deploy: bake of a 5%% release: detect median %d ms, roll back median %d ms, %d of %d requests failed\n",
		med(detect).Milliseconds(), med(rolled).Milliseconds(), badFailed, badTotal)
	fmt.Printf("bench-deploy: to-flip median %.1f s, converge %d ms, rollback %d ms, failed %d of %d\n",
		med(toFlip).Seconds(), med(converge).Milliseconds(), med(rollbacks).Milliseconds(), st.Failed, st.Total)
	b.ReportMetric(med(toFlip).Seconds(), "to-flip-s")
	b.ReportMetric(float64(med(converge).Milliseconds()), "converge-ms")
	b.ReportMetric(float64(med(rollbacks).Milliseconds()), "rollback-ms")
	b.ReportMetric(float64(st.Failed), "failed")
}

// realNodeApp readies the shortener for deploys on a real node: a cluster
// with one, PostgreSQL and Redis beside it, the app's image built and
// pushed, its secret, and a client for namespace ns that keeps the old slot
// warm (rollback is a flip) and smoke-tests every release.
func realNodeApp(t testing.TB, ns string) (cl *testenv.Cluster, e *Client, rec *recorder, ref string, secret map[string]string) {
	t.Helper()
	cl = testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	pg := testenv.StartPostgresOn(t, cl.Node.HostIP)
	rd := testenv.StartRedisOn(t, cl.Node.HostIP)
	ref = buildShortener(t, cl)
	rec = &recorder{t: t}
	e, err := New(AppRef{Kubeconfig: cl.Kubeconfig, Context: cl.Context, Namespace: ns, App: "shortener"}, rec,
		lock.Self(t.Name(), func(string) string { return "" }, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	e.ScaleDownDelay, e.Smoke = time.Hour, SmokeOn
	return cl, e, rec, ref, map[string]string{"DATABASE_URL": pg.URL, "CACHE_URL": rd.URL}
}

// buildShortener builds the app for the node's platform with liftoff's image
// builder and pushes it to the cluster's registry.
func buildShortener(b testing.TB, cl *testenv.Cluster) string {
	ctx := context.Background()
	root := testenv.RepoRoot(b)
	res, err := imagebuild.Build(ctx, imagebuild.BuildOptions{Dir: root, Package: "./app/cmd/shortener", Platforms: []string{"linux/amd64"},
		CacheDir: b.TempDir(), Source: imagebuild.ReadSource(ctx, root, os.Getenv)})
	if err != nil {
		b.Fatal(err)
	}
	pub, err := imagebuild.Publish(ctx, res, imagebuild.PublishOptions{Repository: cl.Registry.Host + "/shortener", Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	return pub.Reference
}

// benchLink creates a user and a link and returns the link's code.
func benchLink(b testing.TB, base string) string {
	post := func(path string, body, out any) {
		buf, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(buf))
		if err != nil || resp.StatusCode != http.StatusCreated {
			b.Fatalf("POST %s: %v %v", path, err, resp)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(out)
	}
	var user struct{ ID int64 }
	post("/users", map[string]string{"username": "bench", "email": "bench@example.com"}, &user)
	var link struct {
		ShortCode string `json:"short_code"`
	}
	post("/urls", map[string]any{"user_id": user.ID, "original_url": "https://example.com/bench"}, &link)
	return link.ShortCode
}

// slotProbe asks, on a new connection every interval, which slot answers.
type slotProbe struct {
	mu      sync.Mutex
	answers []probeAnswer
	done    chan struct{}
	wg      sync.WaitGroup
}

type probeAnswer struct {
	at   time.Time
	slot string
}

func startSlotProbe(base string, every time.Duration) *slotProbe {
	p := &slotProbe{done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for t := time.NewTicker(every); ; {
			select {
			case <-p.done:
				t.Stop()
				return
			case <-t.C:
			}
			at := time.Now()
			slot, err := testenv.Slot(client, base)
			if err != nil {
				slot = "error"
			}
			p.mu.Lock()
			p.answers = append(p.answers, probeAnswer{at, slot})
			p.mu.Unlock()
		}
	}()
	return p
}

// converged waits until new connections have reached slot for a while after
// flip, and returns how long after the flip the last one reached another.
func (p *slotProbe) converged(flip time.Time, slot string) time.Duration {
	const settle = 3 * time.Second // kube-proxy re-syncs within about a second
	for {
		time.Sleep(100 * time.Millisecond)
		p.mu.Lock()
		lastOther, lastAny := flip, time.Time{}
		for _, a := range p.answers {
			if a.at.Before(flip) {
				continue
			}
			lastAny = a.at
			if a.slot != slot {
				lastOther = a.at
			}
		}
		p.mu.Unlock()
		if lastAny.Sub(lastOther) >= settle {
			return lastOther.Sub(flip)
		}
	}
}

func (p *slotProbe) stop() {
	close(p.done)
	p.wg.Wait()
}
