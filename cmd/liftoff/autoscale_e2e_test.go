package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// The bounds the autoscaling test states (the figures it logs are in
// docs/rollouts.md): a flip under load may slow the slowest answers by
// this much over the load's steady p99 before the deploy.
const flipP99Headroom = 250 * time.Millisecond

// TestE2EAutoscale: a kubeconfig stack with `autoscale` on a cluster that
// has no metrics API, on the real node, under load through the live
// Service (new connections, so every pod gets its share):
//   - up installs metrics-server (built from its module, v0.8.0) and the
//     cluster's metrics API serves the app's pods;
//   - load scales the live slot up;
//   - a deploy starts the new slot at the live slot's count, flips with 0
//     failed requests and no p99 spike beyond flipP99Headroom, and the
//     autoscaler follows the new live slot while the parked one stays at 0;
//   - the load stops and the live slot scales back down to the minimum;
//   - autoscale off: up removes metrics-server and the metrics API.
func TestE2EAutoscale(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	pg := testenv.StartPostgresOn(t, cl.Node.HostIP)
	rd := testenv.StartRedisOn(t, cl.Node.HostIP)
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	const ns, low, high = "shop", 1, 3
	args := []string{"init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set", "namespace=" + ns, "--set", "observability=false", "--set", "bake=0s", "--set", "scaleDownDelay=1s",
		"--set", "registry=" + cl.Registry.Host + "/shortener", "--set", "insecureRegistry=true",
		"--set", "database=external", "--set", "cache=external", "--set", "replicas=1",
		"--set", fmt.Sprintf("autoscale=%d-%d", low, high), "--set", "autoscaleCPU=50",
		"--set", "metricsServerImage=" + cl.PushImage(t, "metrics-server"),
		"--set-secret", "databaseUrl=" + pg.URL, "--set-secret", "cacheUrl=" + rd.URL}
	for k, v := range cl.StandIns(t) { // the database tools' image (migrations' snapshots)
		args = append(args, "--set", k+"="+v)
	}
	c.mustRun(args...)

	start := time.Now()
	r := c.mustRun("up", "-s", "dev", "--yes", "--platform", "linux/amd64", "--smoke", "on")
	if !strings.Contains(r.err, "the cluster has no metrics API: up installs metrics-server") {
		t.Errorf("up does not say it installs metrics-server:\n%s", r.err)
	}
	t.Logf("autoscale figures: up with metrics-server in %s", time.Since(start).Round(time.Second))
	// A plan asks the cluster as up does: it keeps the metrics-server.
	if r := c.mustRun("preview", "-s", "dev"); !strings.Contains(r.out, "no changes") {
		t.Errorf("preview right after up: %s", r.out)
	}

	// The metrics API answers for the app's pods.
	start = time.Now()
	var last string
	podMetrics := func() (n int) {
		use, err := podUsage(ctx, cl, ns)
		last = fmt.Sprint(use, err)
		for pod := range use {
			if strings.HasPrefix(pod, "shortener-blue-") {
				n++
			}
		}
		return n
	}
	eventually(t, "the metrics API serving the app's pods", 3*time.Minute, func() bool { return podMetrics() > 0 }, &last)
	t.Logf("autoscale figures: the metrics API served the app's pods %s after up", time.Since(start).Round(time.Second))

	hpa := func() (cur, want int32, target string) {
		h, err := cl.Client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "shortener", metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return 0, 0, ""
		}
		last = fmt.Sprintf("%s: %d current, %d desired, %+v", h.Spec.ScaleTargetRef.Name, h.Status.CurrentReplicas, h.Status.DesiredReplicas, h.Status.CurrentMetrics)
		return h.Status.CurrentReplicas, h.Status.DesiredReplicas, h.Spec.ScaleTargetRef.Name
	}

	base := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live Service answers", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, base); return err == nil })
	load := testenv.StartFreshLoad(base+"/"+shorten(t, base, "https://example.com/autoscale"), 4, func(s int) bool { return s == http.StatusFound })
	defer load.Stop()

	start = time.Now()
	eventually(t, "load scaling the live slot up", 4*time.Minute, func() bool {
		cur, _, _ := hpa()
		_, desired := replicas(t, cl, ns, "blue")
		return cur >= 2 && desired >= 2
	}, &last)
	t.Logf("autoscale figures: load (%s) scaled blue from %d to 2+ replicas in %s", load.Stats(), low, time.Since(start).Round(time.Second))
	// Let it settle where the load puts it.
	time.Sleep(30 * time.Second)
	_, scaled := replicas(t, cl, ns, "blue")
	use, _ := podUsage(ctx, cl, ns)
	ms, _ := podUsage(ctx, cl, "kube-system")
	t.Logf("autoscale figures: blue at %d replicas under load (%s); the pods use %v; metrics-server %v", scaled, last, use, ms)

	steady := load.Stats()
	time.Sleep(10 * time.Second)
	steadyP99 := load.Stats().Since(steady).Quantile(0.99)

	before := load.Stats()
	r = c.mustRun("deploy", "-s", "dev", "--force-deploy", "--platform", "linux/amd64", "--smoke", "on")
	time.Sleep(2 * time.Second) // what kube-proxy's old rules still sent belongs to the deploy
	during := load.Stats().Since(before)
	t.Logf("autoscale figures: deploy under load: %s (steady p99 %s)", during, steadyP99)
	// Blue may have grown again under the load since it was counted: green
	// starts at whatever blue runs when the deploy reads it.
	m := regexp.MustCompile(`slot blue runs (\d+) replicas, more than the 1 configured: slot green starts with (\d+)`).FindStringSubmatch(r.err)
	if n := 0; m != nil {
		n, _ = strconv.Atoi(m[1])
		if m[1] != m[2] || n < int(scaled) {
			m = nil
		}
	}
	if m == nil {
		t.Errorf("the deploy does not start green at blue's count (at least %d):\n%s", scaled, r.err)
	}
	if live := selector(t, cl, ns); live != "green" {
		t.Fatalf("live slot %s after the deploy", live)
	}
	if during.Failed != 0 || during.Total == 0 {
		t.Errorf("the flip under load: %s", during)
	}
	if p99 := during.Quantile(0.99); p99 > steadyP99+flipP99Headroom {
		t.Errorf("the flip's p99 %s is more than %s over the steady %s", p99, flipP99Headroom, steadyP99)
	}
	eventually(t, "the autoscaler following green", time.Minute, func() bool { _, _, target := hpa(); return target == "shortener-green" }, &last)
	eventually(t, "blue parked", 2*time.Minute, func() bool { cur, desired := replicas(t, cl, ns, "blue"); return cur == 0 && desired == 0 }, &last)

	// Still under load: the parked slot stays at 0 while green scales.
	time.Sleep(30 * time.Second)
	if cur, desired := replicas(t, cl, ns, "blue"); cur != 0 || desired != 0 {
		t.Errorf("the parked slot blue has %d replicas (%d desired)", cur, desired)
	}

	// The load stops: green scales back down to the minimum.
	t.Logf("autoscale figures: load in all: %s", load.Stop())
	start = time.Now()
	eventually(t, "green scaling back down", 4*time.Minute, func() bool {
		cur, _, _ := hpa()
		_, desired := replicas(t, cl, ns, "green")
		return cur == low && desired == low
	}, &last)
	t.Logf("autoscale figures: without load green went back to %d replica in %s (stabilization window 30s)", low, time.Since(start).Round(time.Second))

	// Autoscaling off: up removes the autoscaler's metrics-server.
	c.mustRun("config", "set", "-s", "dev", "autoscale", "off")
	if r := c.mustRun("preview", "-s", "dev"); !strings.Contains(r.out, "delete") || !strings.Contains(r.out, "metrics-server") {
		t.Errorf("preview with autoscale off does not plan metrics-server's removal: %s", r.out)
	}
	c.mustRun("up", "-s", "dev", "--yes", "--platform", "linux/amd64")
	if _, err := cl.Client.AppsV1().Deployments("kube-system").Get(ctx, "liftoff-metrics-server", metav1.GetOptions{}); err == nil {
		t.Errorf("metrics-server still runs with autoscale off")
	}
	if _, err := cl.Client.Discovery().RESTClient().Get().AbsPath("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io").DoRaw(ctx); err == nil {
		t.Errorf("the metrics API is still registered with autoscale off")
	}
}

// podUsage is what the cluster's metrics API says each pod in ns uses, by
// pod: "cpu CPU, memory MEMORY" for each container.
func podUsage(ctx context.Context, cl *testenv.Cluster, ns string) (map[string]string, error) {
	b, err := cl.Client.Discovery().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", ns, "pods").DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var l struct {
		Items []struct {
			Metadata   struct{ Name string }
			Containers []struct{ Usage map[string]string }
		}
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	use := map[string]string{}
	for _, p := range l.Items {
		var parts []string
		for _, c := range p.Containers {
			parts = append(parts, fmt.Sprintf("cpu %s, memory %s", c.Usage["cpu"], c.Usage["memory"]))
		}
		use[p.Metadata.Name] = strings.Join(parts, "; ")
	}
	return use, nil
}
