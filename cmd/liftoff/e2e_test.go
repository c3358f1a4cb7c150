package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// Bounds a broken release must fail within (exit 6): the failures that do
// not heal are detected as they happen; a release that is only not ready
// waits out --ready-timeout.
const (
	brokenFailsWithin = 90 * time.Second
	e2eReadyTimeout   = 20 * time.Second
)

// TestE2EDeploy is `make e2e`: liftoff deploy builds the shortener's image,
// pushes it to the cluster's registry and rolls it out on a real node, with
// real PostgreSQL and Redis, the smoke test on, and continuous load through
// the live Service the whole time:
//   - blue, then green, then rollback: no request fails across a flip;
//   - five broken releases (crash at start, never ready, image that cannot
//     be pulled, OOM kill, smoke test failure): each exits 6 within its
//     bound, names its cause, leaves its slot parked, and never gets a
//     request while the live slot keeps answering them all;
//   - a deploy that parks the old slot under load: its pods drain without
//     dropping a request.
func TestE2EDeploy(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	pg := testenv.StartPostgresOn(t, cl.Node.HostIP)
	rd := testenv.StartRedisOn(t, cl.Node.HostIP)
	c := newCLI(t)
	c.dir = testenv.RepoRoot(t)
	ctx := context.Background()
	ns := "shop"
	cl.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	cl.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shortener-env"},
		StringData: map[string]string{"DATABASE_URL": pg.URL, "CACHE_URL": rd.URL}}, metav1.CreateOptions{})
	target := []string{"--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--namespace", ns, "--registry", cl.Registry.Host + "/shortener",
		"--insecure-registry", "--platform", "linux/amd64", "--smoke", "on", "--bake", "0", "--detach"}
	deploy := func(extra ...string) result { return c.run(append(append([]string{"deploy"}, target...), extra...)...) }
	selected := func() string { return selector(t, cl, ns) }

	r := deploy()
	if r.code != 0 {
		t.Fatalf("first deploy: exit %d\n%s\n%s\n%s", r.code, r.out, r.err, cl.Logs(20))
	}
	for _, want := range []string{"==> build", "==> push", "==> deploy", "smoke test passed", "traffic flipped"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("first deploy: stderr lacks %q:\n%s", want, r.err)
		}
	}
	if !strings.Contains(r.out, "slot blue is live in shop") || selected() != "blue" {
		t.Fatalf("first deploy: %s (selector %s)", r.out, selected())
	}
	img := imageOf(t, cl, ns, "blue")
	if !strings.HasPrefix(img, cl.Registry.Host+"/shortener@sha256:") {
		t.Fatalf("blue runs %s, not the pushed digest", img)
	}
	base := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live Service answers", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, base); return err == nil })
	code := shorten(t, base, "https://example.com/e2e")
	load := testenv.StartLoad(base+"/"+code, 8, func(s int) bool { return s == http.StatusFound })
	probe := startProbe(base)
	defer load.Stop()
	defer probe.stop()
	time.Sleep(time.Second)
	step := func(name string, f func()) {
		t.Helper()
		before := load.Stats()
		probe.reset()
		f()
		time.Sleep(500 * time.Millisecond) // answers in flight at the end belong to this step
		got := load.Stats().Since(before)
		t.Logf("%s: %s; new connections answered by %v", name, got, probe.slots())
		if got.Failed > 0 || got.Total == 0 {
			t.Errorf("%s: %s", name, got)
		}
	}

	step("deploy green under load", func() {
		r := deploy("--json", "--force-deploy") // the same image: redeployed on purpose
		evs := validEvents(t, r.out)
		if last := evs[len(evs)-1]; r.code != 0 || last.Type != "summary" || last.Outputs["live"] != "green" || selected() != "green" || imageOf(t, cl, ns, "green") != img {
			t.Fatalf("second deploy: exit %d %+v (selector %s)\n%s", r.code, last, selected(), r.err)
		}
		waitUntil(t, "new connections reach green", func() bool { return probe.last() == "green" })
	})
	step("rollback under load", func() {
		r := c.mustRun("rollback", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--namespace", ns)
		if !strings.Contains(r.out, "slot blue is live") || selected() != "blue" {
			t.Fatalf("rollback: %s (selector %s)", r.out, selected())
		}
		waitUntil(t, "new connections reach blue", func() bool { return probe.last() == "blue" })
	})

	missing := cl.Registry.Host + "/shortener@sha256:" + strings.Repeat("0", 63) + "1"
	for _, b := range []struct {
		name   string
		args   []string
		causes []string // all in the error
		within time.Duration
	}{
		{"crash at start", []string{"--package", "./cmd/liftoff/testdata/releases/crashloop"},
			[]string{"CrashLoopBackOff", "required setting FEATURE_FLAGS_URL is missing"}, brokenFailsWithin},
		{"never ready", []string{"--package", "./cmd/liftoff/testdata/releases/neverready", "--ready-timeout", e2eReadyTimeout.String()},
			[]string{"Timeout", "0/2 replicas ready", "Readiness probe failed", "503"}, e2eReadyTimeout + brokenFailsWithin},
		{"image that cannot be pulled", []string{"--image", missing},
			[]string{"ImagePull", "not found"}, brokenFailsWithin},
		{"OOM kill", []string{"--package", "./cmd/liftoff/testdata/releases/oom"},
			[]string{"OOMKilled", "raise resources.limits.memory", "MiB of the catalogue"}, brokenFailsWithin},
		{"smoke test failure", []string{"--package", "./cmd/liftoff/testdata/releases/smoke500"},
			[]string{"smoke test", "POST /users: 500", "traffic was not flipped"}, brokenFailsWithin},
	} {
		step("broken release: "+b.name, func() {
			start := time.Now()
			r := deploy(b.args...)
			took := time.Since(start)
			t.Logf("broken release %q: exit %d after %s", b.name, r.code, took.Round(100*time.Millisecond))
			if r.code != 6 || took > b.within {
				t.Errorf("%s: exit %d after %s (want 6 within %s)\n%s", b.name, r.code, took, b.within, r.err)
			}
			for _, want := range b.causes {
				if !strings.Contains(r.err, want) {
					t.Errorf("%s: the error does not name %q:\n%s", b.name, want, r.err)
				}
			}
			if selected() != "blue" {
				t.Errorf("%s: traffic moved to %s", b.name, selected())
			}
			if current, desired := replicas(t, cl, ns, "green"); desired != 0 {
				t.Errorf("%s: the failed slot was not parked: %d replicas, %d desired", b.name, current, desired)
			}
			if s := probe.slots(); len(s) != 1 || s["blue"] == 0 {
				t.Errorf("%s: new connections were answered by %v, want blue only", b.name, s)
			}
		})
	}

	step("deploy that parks the old slot under load", func() {
		r := c.run(append(append([]string{"deploy"}, target[:len(target)-1]...), "--scale-down-delay", "2s", "--force-deploy")...)
		if r.code != 0 || selected() != "green" {
			t.Fatalf("deploy: exit %d (selector %s)\n%s", r.code, selected(), r.err)
		}
		if _, desired := replicas(t, cl, ns, "blue"); desired != 0 {
			t.Errorf("blue not parked: %d desired", desired)
		}
	})
	if s := load.Stop(); s.Failed > 0 {
		t.Errorf("in all: %s", s)
	}
	// A deploy of an unusable image reference changes nothing.
	if r := c.run("deploy", "--image", "not a ref", "--kubeconfig", cl.Kubeconfig, "--namespace", ns); r.code != 2 || selected() != "green" {
		t.Errorf("bad image: %+v", r)
	}
}

// probe asks the live Service, on a new connection every few milliseconds,
// which slot answers: kept-alive connections stay with the pod they first
// reached, new ones show where kube-proxy sends traffic now.
type prober struct {
	mu     sync.Mutex
	counts map[string]int
	latest string
	done   chan struct{}
	wg     sync.WaitGroup
}

func startProbe(base string) *prober {
	p := &prober{counts: map[string]int{}, done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			select {
			case <-p.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			slot, err := testenv.Slot(client, base)
			if err != nil {
				slot = "error: " + err.Error()
			}
			p.mu.Lock()
			p.counts[slot]++
			p.latest = slot
			p.mu.Unlock()
		}
	}()
	return p
}

func (p *prober) reset() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.mu.Unlock()
}

func (p *prober) slots() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

func (p *prober) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest
}

func (p *prober) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

func clusterIP(t *testing.T, cl *testenv.Cluster, ns, svc string) string {
	t.Helper()
	s, err := cl.Client.CoreV1().Services(ns).Get(context.Background(), svc, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.ClusterIP
}

func replicas(t *testing.T, cl *testenv.Cluster, ns, slot string) (current, desired int32) {
	t.Helper()
	d, err := cl.Client.AppsV1().Deployments(ns).Get(context.Background(), "shortener-"+slot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Status.Replicas, *d.Spec.Replicas
}

// shorten creates a user and a link on a running shortener and returns the code.
func shorten(t *testing.T, base, target string) string {
	t.Helper()
	post := func(path string, body any, out any) {
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d", path, resp.StatusCode)
		}
		json.NewDecoder(resp.Body).Decode(out)
	}
	var user struct{ ID int64 }
	name := fmt.Sprintf("e2e%d", time.Now().UnixNano())
	post("/users", map[string]string{"username": name, "email": name + "@example.com"}, &user)
	var link struct {
		ShortCode string `json:"short_code"`
	}
	post("/urls", map[string]any{"user_id": user.ID, "original_url": target}, &link)
	return link.ShortCode
}
