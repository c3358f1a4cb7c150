package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// TestInClusterDay2 is the kubeconfig target's in-cluster stack on day 2,
// through the real engine and Kubernetes provider on a real node:
//   - first up, an up with only an app change, an up with nothing changed,
//     and destroy, each timed by phase (the README's figures);
//   - data survives an up that changes an unrelated setting: the PostgreSQL
//     StatefulSet and its volume are the same objects and the rows are there;
//   - drift: a Service deleted and the app's Secret edited by hand are named
//     by preview and repaired by up;
//   - up SIGKILLed while the engine creates resources: the next up finishes
//     with every liftoff object once, in the state and in the cluster;
//   - destroy: the receipt lists the resources, nothing is left in the
//     cluster, the state is gone.
func TestInClusterDay2(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	// The node enforces NetworkPolicies, as k3s does: the migrations, the
	// app, the backup that destroy takes, all through liftoff's own policies.
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true, NetworkPolicies: true})
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	ns := "shortener"
	initArgs := []string{"init", "-s", "prod", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--set", "observability=false", "--set", "bake=0s"}
	for k, v := range cl.StandIns(t) {
		initArgs = append(initArgs, "--set", k+"="+v)
	}
	c.mustRun(initArgs...)
	up := []string{"up", "--yes", "--platform", "linux/amd64", "--smoke", "on", "--json"}
	figures := map[string]string{}
	var firstUp string
	timed := func(name string, args ...string) ui.Event {
		t.Helper()
		start := time.Now()
		out := c.mustRun(args...).out
		if firstUp == "" {
			firstUp = out
		}
		sum := summaryOf(t, out)
		figures[name] = fmt.Sprintf("%s (%s)", time.Since(start).Round(100*time.Millisecond), phases(sum))
		return sum
	}

	timed("first up", up...)
	for _, ev := range validEvents(t, firstUp) { // what the engine waited for, resource by resource
		if ev.Type == "resource" && ev.Status == "done" && (ev.ResourceType == "kubernetes:core/v1:Service" || ev.ResourceType == "kubernetes:apps/v1:StatefulSet") {
			t.Logf("in-cluster figures: create %s %s: %s", ev.ResourceType, ev.Name, time.Duration(ev.DurationMS)*time.Millisecond)
		}
	}
	url := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live URL", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, url); return err == nil })
	code := shorten(t, url, "https://example.com/kept")
	pgSet := uidOf(t, cl, "statefulset", ns, "postgres")
	pgClaim := uidOf(t, cl, "pvc", ns, "data-postgres-0")

	c.changeApp()
	if sum := timed("up, app change only", up...); hasChanges(sum) {
		t.Errorf("an app-only change changed the infrastructure: %v", sum.Fields()["changes"])
	}
	liveBefore := selector(t, cl, ns)
	if sum := timed("up, nothing changed", up...); hasChanges(sum) || !strings.Contains(sum.Message, "already serves") || selector(t, cl, ns) != liveBefore {
		t.Errorf("an up with nothing changed did something: %s, changes %v, live %s (was %s)", sum.Message, sum.Fields()["changes"], selector(t, cl, ns), liveBefore)
	}

	// An unrelated setting: the cache goes; PostgreSQL, its volume and its rows stay.
	c.mustRun("config", "set", "cache", "none")
	c.mustRun(up...)
	if got := uidOf(t, cl, "statefulset", ns, "postgres"); got != pgSet {
		t.Errorf("the PostgreSQL StatefulSet was replaced (%s, was %s)", got, pgSet)
	}
	if got := uidOf(t, cl, "pvc", ns, "data-postgres-0"); got != pgClaim {
		t.Errorf("the PostgreSQL volume was replaced (%s, was %s)", got, pgClaim)
	}
	if _, err := cl.Client.AppsV1().StatefulSets(ns).Get(ctx, "valkey", metav1.GetOptions{}); err == nil {
		t.Error("valkey still runs with cache none")
	}
	if status := redirect(t, url, code); status != http.StatusFound {
		t.Errorf("the link made before the change answers %d", status)
	}

	// Drift: repaired by up, named by preview first.
	if err := cl.Client.CoreV1().Services(ns).Delete(ctx, "postgres", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Client.CoreV1().Secrets(ns).Patch(ctx, "shortener-env", types.MergePatchType,
		[]byte(`{"stringData":{"DATABASE_URL":"postgres://edited@elsewhere/app"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := c.mustRun("preview")
	for _, want := range []string{"kubernetes:core/v1:Service database", "kubernetes:core/v1:Secret app-env"} {
		if !strings.Contains(pv.out, want) {
			t.Errorf("preview does not name the drift %q:\n%s", want, pv.out)
		}
	}
	c.mustRun(up...)
	if _, err := cl.Client.CoreV1().Services(ns).Get(ctx, "postgres", metav1.GetOptions{}); err != nil {
		t.Errorf("up did not put the deleted Service back: %v", err)
	}
	sec, _ := cl.Client.CoreV1().Secrets(ns).Get(ctx, "shortener-env", metav1.GetOptions{})
	if u := string(sec.Data["DATABASE_URL"]); !strings.Contains(u, "@postgres.shortener.svc") {
		t.Errorf("up did not repair the app's Secret: DATABASE_URL %q", u)
	}
	if pv := c.mustRun("preview"); !strings.Contains(pv.out, "no changes") {
		t.Errorf("preview after the repair:\n%s", pv.out)
	}

	// SIGKILL while the engine creates the cache again.
	c.mustRun("config", "set", "cache", "in-cluster")
	cmd := c.process(up...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	creating := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev ui.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "resource" && ev.Op == "create" && ev.Status == "started" && ev.ResourceType == "kubernetes:apps/v1:StatefulSet" {
				close(creating)
				for sc.Scan() {
				}
				return
			}
		}
	}()
	select {
	case <-creating:
	case <-time.After(5 * time.Minute):
		killTree(t, cmd)
		t.Fatal("up never started creating the cache")
	}
	time.Sleep(300 * time.Millisecond) // the create is in flight at the API server
	killTree(t, cmd)
	c.mustRun(up...)
	inState, inCluster := liftoffObjects(t, c, cl, ns)
	if strings.Join(inState, "\n") != strings.Join(inCluster, "\n") {
		t.Errorf("after the killed up, the state and the cluster disagree:\nstate:   %v\ncluster: %v", inState, inCluster)
	}
	if status := redirect(t, url, code); status != http.StatusFound {
		t.Errorf("after the killed up, the link answers %d", status)
	}

	start := time.Now()
	r := c.mustRun("destroy", "--yes", "--json")
	var rec ui.Event
	for _, ev := range validEvents(t, r.out) {
		if ev.Type == "summary" || ev.Type == "result" {
			rec = ev
		}
	}
	figures["destroy"] = fmt.Sprintf("%s (%s)", time.Since(start).Round(100*time.Millisecond), phases(rec))
	for _, want := range []string{"kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service", "kubernetes:core/v1:Secret", `"clean":true`, `"state_removed":true`} {
		if !strings.Contains(r.out, want) {
			t.Errorf("destroy's receipt lacks %q:\n%s", want, r.out)
		}
	}
	if left := leftovers(t, cl); len(left) > 0 {
		t.Errorf("destroy left in the cluster: %v", left)
	}
	names := make([]string, 0, len(figures))
	for k := range figures {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Logf("in-cluster figures: %-22s %s", k, figures[k])
	}
}

// phases renders a summary's phase timings: "infrastructure 1.2s, build 3s, ...".
func phases(ev ui.Event) string {
	list, _ := ev.Fields()["phases"].([]any)
	var parts []string
	for _, p := range list {
		m, _ := p.(map[string]any)
		ms, _ := m["duration_ms"].(float64)
		part := fmt.Sprintf("%s %s", m["name"], (time.Duration(ms) * time.Millisecond).Round(100*time.Millisecond))
		if st, _ := m["status"].(string); st != "ok" {
			part += " (" + st + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

func hasChanges(sum ui.Event) bool {
	changes, _ := sum.Fields()["changes"].(map[string]any)
	for op, n := range changes {
		if op != "same" && op != "refresh" && n.(float64) > 0 {
			return true
		}
	}
	return false
}

func uidOf(t *testing.T, cl *testenv.Cluster, kind, ns, name string) types.UID {
	t.Helper()
	var m metav1.Object
	var err error
	switch kind {
	case "statefulset":
		m, err = cl.Client.AppsV1().StatefulSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	case "pvc":
		m, err = cl.Client.CoreV1().PersistentVolumeClaims(ns).Get(context.Background(), name, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return m.GetUID()
}

// redirect follows nothing: it returns the status GET /code answers.
func redirect(t *testing.T, base, code string) int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		resp, err := client.Get(base + "/" + code)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("GET /%s: %v", code, err)
		}
	}
}

// liftoffObjects lists the StatefulSets, Services and Secrets of the
// namespace by kind and name: as the stack's state records them, and as the
// cluster has them (less what the rollout owns, which is not in the state).
func liftoffObjects(t *testing.T, c *cli, cl *testenv.Cluster, ns string) (inState, inCluster []string) {
	t.Helper()
	ctx := context.Background()
	eng, err := engine.New(ctx, engine.Options{Dir: c.dir, Home: c.home, Getenv: func(k string) string { return c.env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := eng.Stack(ctx, "prod", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch r.Type {
		case "kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service", "kubernetes:core/v1:Secret":
			inState = append(inState, r.Type[strings.LastIndex(r.Type, ":")+1:]+"/"+strings.TrimPrefix(r.ID, ns+"/"))
		}
	}
	owned := map[string]bool{"shortener": true, "shortener-preview": true}
	sets, _ := cl.Client.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	for _, s := range sets.Items {
		inCluster = append(inCluster, "StatefulSet/"+s.Name)
	}
	svcs, _ := cl.Client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	for _, s := range svcs.Items {
		if !owned[s.Name] {
			inCluster = append(inCluster, "Service/"+s.Name)
		}
	}
	secrets, _ := cl.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	for _, s := range secrets.Items {
		if !strings.HasPrefix(s.Name, "sh.helm.release.") {
			inCluster = append(inCluster, "Secret/"+s.Name)
		}
	}
	sort.Strings(inState)
	sort.Strings(inCluster)
	return inState, inCluster
}
