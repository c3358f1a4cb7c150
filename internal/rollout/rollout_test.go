package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var cluster *testenv.Cluster

// TestMain starts one cluster for the package; every test uses its own namespace.
func TestMain(m *testing.M) {
	if os.Getenv("ROLLOUT_HELPER") != "" {
		os.Exit(helperMain())
	}
	os.Exit(testenv.MainWithCluster(m, testenv.KwokOnly, func(c *testenv.Cluster) { cluster = c }))
}

// recorder is a Reporter that keeps what it was told.
type recorder struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.lines = append(r.lines, s)
	r.mu.Unlock()
	if _, bench := r.t.(*testing.B); !bench { // a benchmark's figures are its output
		r.t.Log(s)
	}
}
func (r *recorder) Infof(f string, a ...any) { r.add(fmt.Sprintf(f, a...)) }
func (r *recorder) Warnf(f string, a ...any) { r.add("warning: " + fmt.Sprintf(f, a...)) }
func (r *recorder) Waiting(string)           {}
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

var nsSeq int

func newEngine(t testing.TB, ns string) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{t: t}
	self := lock.Self("test "+t.Name(), func(string) string { return "" }, time.Now())
	e, err := New(AppRef{Kubeconfig: cluster.Kubeconfig, Context: cluster.Context, Namespace: ns, App: "shortener"}, rec, self)
	if err != nil {
		t.Fatal(err)
	}
	e.Poll, e.ScaleDownDelay, e.Smoke = 100*time.Millisecond, 0, SmokeOff
	return e, rec
}

func namespace(t testing.TB) string {
	nsSeq++
	ns := fmt.Sprintf("t%d-%s", nsSeq, strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	return strings.TrimRight(ns[:min(40, len(ns))], "-")
}

func image(n int) string {
	return fmt.Sprintf("registry.test/shortener@sha256:%064x", n)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func live(t *testing.T, e *Client) string {
	t.Helper()
	s, _, err := e.serviceSlot(context.Background(), e.StableService())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func replicas(t *testing.T, e *Client, slot string) (desired, ready int32) {
	t.Helper()
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(context.Background(), e.Release(slot), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas, d.Status.ReadyReplicas
}

// TestBlueGreen: blue live, then green, then back; Services, replicas and
// Helm history agree at every step.
func TestBlueGreen(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	res, err := e.Deploy(ctx, DeployOptions{Image: image(1), SecretData: map[string]string{"DATABASE_URL": "postgres://x@db/app"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Live != Blue || live(t, e) != Blue || res.Revision != 1 {
		t.Fatalf("first deploy: %+v", res)
	}
	sec, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, "shortener-env", metav1.GetOptions{})
	if err != nil || string(sec.Data["DATABASE_URL"]) != "postgres://x@db/app" {
		t.Fatalf("secret: %v", err)
	}

	e.ScaleDownDelay = time.Second // not detached: deploy waits, then parks blue
	res, err = e.Deploy(ctx, DeployOptions{Image: image(2)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Live != Green || live(t, e) != Green || res.Previous != Blue {
		t.Fatalf("second deploy: %+v", res)
	}
	if d, _ := replicas(t, e, Blue); d != 0 {
		t.Errorf("blue not parked after the scale-down delay: %d replicas", d)
	}

	// Rollback to a parked slot scales it back up first, then flips.
	res, err = e.Rollback(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Live != Blue || live(t, e) != Blue {
		t.Fatalf("rollback: %+v", res)
	}
	if d, r := replicas(t, e, Blue); d != 2 || r != 2 {
		t.Errorf("blue after rollback: %d/%d", r, d)
	}
	st, err := e.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Green is warm with its park time, or (on a slow machine, past the 1s delay) already parked by Status itself.
	greenWarmOrParked := !st.Slots[1].ScaleDownAt.IsZero() || st.Slots[1].Desired == 0
	if st.Live != Blue || st.Slots[0].Image != image(1) || st.Slots[1].Image != image(2) || !st.Slots[0].Live || !greenWarmOrParked {
		t.Errorf("status: %+v", st)
	}
	// Helm's own view stays sane: both releases deployed, nothing pending.
	list := action.NewList(e.Helm())
	rels, err := list.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 2 {
		t.Fatalf("helm list: %d releases", len(rels))
	}
	for _, r := range rels {
		if r.Info.Status != release.StatusDeployed {
			t.Errorf("%s: %s", r.Name, r.Info.Status)
		}
	}
}

// TestRollbackWhileWarm: with the old slot still warm, rollback only flips.
func TestRollbackWhileWarm(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	e.ScaleDownDelay = time.Hour
	for i := 1; i <= 2; i++ {
		if _, err := e.Deploy(ctx, DeployOptions{Image: image(i), Detach: true}); err != nil {
			t.Fatal(err)
		}
	}
	if d, r := replicas(t, e, Blue); d != 2 || r != 2 {
		t.Fatalf("blue not warm: %d/%d", r, d)
	}
	res, err := e.Rollback(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Live != Blue {
		t.Fatalf("rollback: %+v", res)
	}
	t.Logf("rollback flip took %s", res.Flip)
	// Green is now the warm previous slot, due to park later.
	st, _ := e.Status(ctx)
	if st.Slots[1].ScaleDownAt.IsZero() || st.Slots[1].Desired != 2 {
		t.Errorf("green after rollback: %+v", st.Slots[1])
	}
}

// TestUnhealthySlotNeverGetsTraffic: a new slot that crash-loops, cannot pull
// its image or never becomes ready fails the deploy with a diagnosis, is
// parked, and the live slot keeps the traffic.
func TestUnhealthySlotNeverGetsTraffic(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		behaviour, reason string
		timeout           time.Duration
	}{
		{"crashloop", "CrashLoopBackOff", time.Hour}, // fails fast: long before the timeout
		{"image-pull", "ImagePullBackOff", time.Hour},
		{"never-ready", "Timeout", 3 * time.Second},
	}
	for i, c := range cases {
		e.ReadyTimeout = c.timeout
		_, err := e.Deploy(ctx, DeployOptions{Image: image(10 + i), PodLabels: map[string]string{"kwok.liftoff.dev/behaviour": c.behaviour}})
		var he *HealthError
		if !errors.As(err, &he) || failure.ClassOf(err) != failure.Health {
			t.Fatalf("%s: %v", c.behaviour, err)
		}
		if he.Reason != c.reason || he.Slot != Green || he.Pod == "" {
			t.Errorf("%s: %+v", c.behaviour, he)
		}
		if !strings.Contains(err.Error(), "last log lines") {
			t.Errorf("%s: no log section: %v", c.behaviour, err)
		}
		if live(t, e) != Blue {
			t.Fatalf("%s: traffic moved to the unhealthy slot", c.behaviour)
		}
		if d, _ := replicas(t, e, Green); d != 0 {
			t.Errorf("%s: the failed slot was not parked (%d replicas)", c.behaviour, d)
		}
	}
	// A healthy deploy afterwards goes to green and flips.
	e.ReadyTimeout = time.Minute
	if res, err := e.Deploy(ctx, DeployOptions{Image: image(20)}); err != nil || res.Live != Green {
		t.Fatalf("healthy deploy after failures: %+v %v", res, err)
	}
}

func TestBadValuesChangeNothing(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	_, err := e.Deploy(context.Background(), DeployOptions{Image: "registry.test/shortener:latest", Replicas: 500})
	if failure.ClassOf(err) != failure.Config || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("got %v", err)
	}
	if _, err := e.Kube.CoreV1().Namespaces().Get(context.Background(), e.Ref.Namespace, metav1.GetOptions{}); err == nil {
		t.Error("bad values still created the namespace")
	}
	for _, bad := range []string{"UPPER/case@@", "not//an:image", "r.io/a/-b:1"} {
		if _, err := ParseImage(bad); failure.ClassOf(err) != failure.Config {
			t.Errorf("bad image %s: %v", bad, err)
		}
	}
	for _, ok := range []string{"r.io/a__b/c-d.e:1", "localhost:5000/app@sha256:" + strings.Repeat("a", 64), "shortener"} {
		if _, err := ParseImage(ok); err != nil {
			t.Errorf("good image %s: %v", ok, err)
		}
	}
}

func TestNoPromoteThenPromote(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Deploy(ctx, DeployOptions{Image: image(2), NoPromote: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Promoted || live(t, e) != Blue {
		t.Fatalf("--no-promote flipped: %+v", res)
	}
	if p, _, _ := e.serviceSlot(ctx, e.PreviewService()); p != Green {
		t.Fatalf("preview selects %s", p)
	}
	res, err = e.Promote(ctx, true)
	if err != nil || res.Live != Green || live(t, e) != Green {
		t.Fatalf("promote: %+v %v", res, err)
	}
}

// TestConcurrentDeploysSerialize: two deploys at once take turns on the lock.
func TestConcurrentDeploysSerialize(t *testing.T) {
	ns := namespace(t)
	a, recA := newEngine(t, ns)
	b, recB := newEngine(t, ns)
	a.Self.Command, b.Self.Command = "deploy A", "deploy B"
	a.LockWait, b.LockWait = 2*time.Minute, 2*time.Minute
	a.ensureNamespace(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, e := range []*Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.Deploy(context.Background(), DeployOptions{Image: image(100 + i)})
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("deploys: %v / %v", errs[0], errs[1])
	}
	if !recA.has("waiting for the deploy lock") && !recB.has("waiting for the deploy lock") {
		t.Error("neither deploy waited for the other")
	}
	st, _ := a.Status(context.Background())
	if st.Slots[0].Revision != 1 || st.Slots[1].Revision != 1 || st.Live != Green {
		t.Errorf("after two serialized deploys: %+v", st)
	}
	// Without waiting, a held lock is an immediate, named refusal.
	ctx, l, err := a.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	_ = ctx
	b.LockWait = 0
	_, err = b.Deploy(context.Background(), DeployOptions{Image: image(3)})
	if failure.ClassOf(err) != failure.Locked || !strings.Contains(err.Error(), "deploy A") {
		t.Errorf("held lock: %v", err)
	}
}

// TestKilledDeployRecovered kills a deploy process while it waits (its lease
// left behind), and plants a release stuck in pending-upgrade, as a kill
// during Helm's apply leaves it: the next deploy recovers both and finishes.
func TestKilledDeployRecovered(t *testing.T) {
	ns := namespace(t)
	e, rec := newEngine(t, ns)
	ctx := context.Background()
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ROLLOUT_HELPER=deploy-never-ready", "HELPER_NS="+ns, "HELPER_KUBECONFIG="+cluster.Kubeconfig)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, _ := e.Holder(ctx)
		if h != nil && h.PID == cmd.Process.Pid {
			if st, _ := e.Status(ctx); st != nil && st.Slots[1].Revision > 0 {
				break // the helper holds the lock and has applied green
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("helper never took the lock")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	// Plant a pending upgrade on blue: a kill in the middle of Helm's apply.
	rel, err := e.Helm().Releases.Last(e.Release(Blue))
	if err != nil {
		t.Fatal(err)
	}
	stuck := *rel
	info := *rel.Info
	stuck.Info, stuck.Version = &info, rel.Version+1
	stuck.Info.Status = release.StatusPendingUpgrade
	if err := e.Helm().Releases.Create(&stuck); err != nil {
		t.Fatal(err)
	}
	if _, err := action.NewUpgrade(e.Helm()).RunWithContext(ctx, e.Release(Blue), e.chart, map[string]any{"image": map[string]any{"repository": "r", "tag": "t"}}); err == nil {
		t.Fatal("Helm accepted an upgrade of a pending release: the plant proves nothing")
	}

	res, err := e.Deploy(ctx, DeployOptions{Image: image(3)})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.has("took over the deploy lock") || !rec.has("rolling back") {
		t.Errorf("recovery not reported: %v", rec.lines)
	}
	// Live was blue: the next deploy went to green and succeeded.
	if res.Live != Green || live(t, e) != Green {
		t.Fatalf("after recovery: %+v", res)
	}
	hist := action.NewHistory(e.Helm())
	rels, _ := hist.Run(e.Release(Blue))
	for _, r := range rels {
		if r.Info.Status.IsPending() {
			t.Errorf("blue revision %d still %s", r.Version, r.Info.Status)
		}
	}
}

// helperMain is the deploy that TestKilledDeployRecovered kills.
func helperMain() int {
	self := lock.Self("helper deploy", func(string) string { return "" }, time.Now())
	e, err := New(AppRef{Kubeconfig: os.Getenv("HELPER_KUBECONFIG"), Context: "liftoff-test", Namespace: os.Getenv("HELPER_NS"), App: "shortener"},
		&recorder{t: &testing.T{}}, self)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e.ReadyTimeout, e.Smoke = time.Hour, SmokeOff
	_, err = e.Deploy(context.Background(), DeployOptions{Image: image(2), PodLabels: map[string]string{"kwok.liftoff.dev/behaviour": "never-ready"}})
	fmt.Fprintln(os.Stderr, "helper deploy returned:", err)
	return 1
}

// TestNamespaceMetadata: the target's labels and annotations are set when
// the namespace is created and brought up to date on a later deploy (a
// preview's expiry moves on every up), leaving other metadata alone.
func TestNamespaceMetadata(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	e, _ := newEngine(t, ns)
	e.Ref.NamespaceLabels = map[string]string{"liftoff.dev/preview-of": "prod"}
	e.Ref.NamespaceAnnotations = map[string]string{"liftoff.dev/expires": "2026-12-01T00:00:00Z"}
	if err := e.ensureNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	e.Kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(`{"metadata":{"annotations":{"team":"growth"}}}`), metav1.PatchOptions{})
	e.Ref.NamespaceAnnotations["liftoff.dev/expires"] = "2026-12-04T00:00:00Z"
	if err := e.ensureNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["liftoff.dev/preview-of"] != "prod" || got.Labels[LabelManagedBy] != "liftoff" ||
		got.Annotations["liftoff.dev/expires"] != "2026-12-04T00:00:00Z" || got.Annotations["team"] != "growth" {
		t.Errorf("namespace metadata: labels %v annotations %v", got.Labels, got.Annotations)
	}
}

// TestSecretsChange: a secrets change deploys the live image to the idle
// slot with a new immutable Secret, stores under the lock (a held lock
// refuses it before the hook runs), keeps the versions a slot still uses,
// and lands in the history with the right action, slot and digest.
func TestSecretsChange(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	versions := []string{}
	change := func(val string) (*Result, error) {
		return e.Deploy(ctx, DeployOptions{ReuseLive: true, Action: ActionSecrets, Locked: func(ctx context.Context, o *DeployOptions) error {
			if h, _ := e.Holder(ctx); h == nil || h.PID != e.Self.PID {
				t.Errorf("the hook ran without the deploy lock: %+v", h)
			}
			o.AppSecrets = map[string]string{"GREETING": val}
			versions = append(versions, SecretsVersion(o.AppSecrets))
			return nil
		}})
	}
	for i, val := range []string{"one", "two", "three"} {
		res, err := change(val)
		if err != nil {
			t.Fatal(err)
		}
		if res.Image != image(1) || res.Slot != []string{Green, Blue, Green}[i] {
			t.Errorf("change %d: %+v", i, res)
		}
		d, _ := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(res.Slot), metav1.GetOptions{})
		c := d.Spec.Template.Spec.Containers[0]
		if c.Image != image(1) || len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != e.SecretsName(versions[i]) ||
			d.Spec.Template.Annotations[AnnSecretsVersion] != versions[i] {
			t.Errorf("change %d: slot %s runs %s with %+v %v", i, res.Slot, c.Image, c.EnvFrom, d.Spec.Template.Annotations)
		}
		s, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, e.SecretsName(versions[i]), metav1.GetOptions{})
		if err != nil || s.Immutable == nil || !*s.Immutable || string(s.Data["GREETING"]) != val {
			t.Errorf("change %d: secret %v %+v", i, err, s)
		}
	}
	// The first version is used by no slot any more; the other two are.
	if _, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, e.SecretsName(versions[0]), metav1.GetOptions{}); err == nil {
		t.Errorf("version %s outlived both slots", versions[0])
	}
	if _, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, e.SecretsName(versions[1]), metav1.GetOptions{}); err != nil {
		t.Errorf("version %s, still the previous slot's (rollback), was deleted: %v", versions[1], err)
	}
	// A held lock refuses the change before its hook stores anything.
	other, _ := newEngine(t, e.Ref.Namespace)
	other.Self.Command = "deploy elsewhere"
	_, l, err := other.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err = e.Deploy(ctx, DeployOptions{ReuseLive: true, Action: ActionSecrets, Locked: func(context.Context, *DeployOptions) error { ran = true; return nil }})
	l.release()
	if failure.ClassOf(err) != failure.Locked || !strings.Contains(err.Error(), "deploy elsewhere") || ran {
		t.Errorf("secrets change under a held lock: %v (hook ran: %v)", err, ran)
	}
	hist, err := e.History(ctx, 0)
	if err != nil || len(hist) != 4 {
		t.Fatalf("history: %v %+v", err, hist)
	}
	for i, want := range []struct{ action, slot, secrets string }{{ActionSecrets, Green, versions[2]}, {ActionSecrets, Blue, versions[1]}, {ActionSecrets, Green, versions[0]}, {ActionDeploy, Blue, ""}} {
		h := hist[i]
		if h.Action != want.action || h.Slot != want.slot || h.Secrets != want.secrets || h.Result != "ok" || h.Digest != strings.TrimPrefix(image(1), "registry.test/shortener@") || h.Who == "" {
			t.Errorf("history[%d] = %+v, want %+v", i, h, want)
		}
	}
	// Teardown in a namespace liftoff did not create: the app goes, history
	// and secrets included; the namespace stays.
	ns, _ := e.Kube.CoreV1().Namespaces().Get(ctx, e.Ref.Namespace, metav1.GetOptions{})
	ns.Labels[LabelManagedBy] = "someone-else"
	if _, err := e.Kube.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Teardown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Kube.CoreV1().ConfigMaps(e.Ref.Namespace).Get(ctx, e.HistoryName(), metav1.GetOptions{}); err == nil {
		t.Error("the release history outlived the app")
	}
	if list, _ := e.Kube.CoreV1().Secrets(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelComponent + "=" + componentSecrets}); len(list.Items) != 0 {
		t.Errorf("%d versions of the app's secrets outlived the app", len(list.Items))
	}
	if _, err := e.Kube.CoreV1().Namespaces().Get(ctx, e.Ref.Namespace, metav1.GetOptions{}); err != nil {
		t.Errorf("the namespace liftoff did not create was deleted: %v", err)
	}
}

func TestValidSecretKey(t *testing.T) {
	for key, ok := range map[string]bool{"STRIPE_KEY": true, "_x1": true, "1BAD": false, "A-B": false, "": false, "DATABASE_URL": false, "CACHE_URL": false, "SLOT": false} {
		if err := ValidSecretKey(key); (err == nil) != ok {
			t.Errorf("ValidSecretKey(%q) = %v", key, err)
		}
	}
	if SecretsVersion(nil) != "" || SecretsVersion(map[string]string{"A": "1"}) == SecretsVersion(map[string]string{"A": "2"}) ||
		SecretsVersion(map[string]string{"A": "1=B"}) == SecretsVersion(map[string]string{"A": "1", "B": ""}) {
		t.Error("SecretsVersion does not tell contents apart")
	}
}

// TestAlreadyLive: the same image, values, secrets and stack Secret again
// leave traffic alone; --force-deploy, or a change of the stack's Secret,
// deploys.
func TestAlreadyLive(t *testing.T) {
	e, rec := newEngine(t, namespace(t))
	ctx := context.Background()
	env := map[string]string{"DATABASE_URL": "postgres://a"}
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(7), SecretData: env}); err != nil {
		t.Fatal(err)
	}
	res, err := e.Deploy(ctx, DeployOptions{Image: image(7), SecretData: env})
	if err != nil || !res.AlreadyLive || res.Promoted || live(t, e) != Blue || !rec.has("already live") {
		t.Fatalf("the same deploy again: %+v %v (live %s)", res, err, live(t, e))
	}
	if _, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(Green), metav1.GetOptions{}); err == nil {
		t.Errorf("already live, but green was deployed")
	}
	if res, err := e.Deploy(ctx, DeployOptions{Image: image(7), SecretData: env, Force: true}); err != nil || res.AlreadyLive || live(t, e) != Green {
		t.Fatalf("forced: %+v %v", res, err)
	}
	env["DATABASE_URL"] = "postgres://b"
	if res, err := e.Deploy(ctx, DeployOptions{Image: image(7), SecretData: env}); err != nil || res.AlreadyLive || live(t, e) != Blue {
		t.Fatalf("after the stack's Secret changed: %+v %v", res, err)
	}
	if hist, _ := e.History(ctx, 0); len(hist) != 4 || hist[2].Result != "already-live" {
		t.Errorf("history: %+v", hist)
	}
}

// TestRollbackAfterFailedDeploy: blue, green, blue are live in turn; a
// deploy into green then fails (crash loop), leaving a release in green
// that never served. Rollback restores green's last good revision (the one
// that was live), not the broken one; with no good revision at all it
// says so and changes nothing.
func TestRollbackAfterFailedDeploy(t *testing.T) {
	e, rec := newEngine(t, namespace(t))
	ctx := context.Background()
	e.ScaleDownDelay = time.Hour
	// Every action is announced once, the failed deploy too; the team
	// channel is down, which fails nothing.
	var told []Record
	e.Announce = func(_ context.Context, r Record, _ *Result) error {
		told = append(told, r)
		return errors.New("channel down")
	}
	for i := 1; i <= 3; i++ { // blue 1, green 1, blue 2
		if _, err := e.Deploy(ctx, DeployOptions{Image: image(i), Detach: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(4), Detach: true, PodLabels: map[string]string{"kwok.liftoff.dev/behaviour": "crashloop"}}); failure.ClassOf(err) != failure.Health {
		t.Fatalf("broken deploy: %v", err)
	}
	res, err := e.Rollback(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(Green), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Live != Green || live(t, e) != Green || d.Spec.Template.Spec.Containers[0].Image != image(2) || res.Revision != 3 {
		t.Fatalf("rollback went to %s revision %d running %s, want green's revision 1 (image 2) restored as revision 3",
			res.Live, res.Revision, d.Spec.Template.Spec.Containers[0].Image)
	}
	hist, _ := e.History(ctx, 1)
	if hist[0].Action != ActionRollback || hist[0].Result != "ok" || hist[0].Revision != 3 || hist[0].Image != image(2) {
		t.Errorf("history: %+v", hist[0])
	}
	var got []string
	for _, r := range told {
		got = append(got, r.Action+" "+r.Slot+" "+r.Result)
	}
	if want := "deploy blue ok,deploy green ok,deploy blue ok,deploy green failed,rollback green ok"; strings.Join(got, ",") != want {
		t.Errorf("announced %q, want %q", strings.Join(got, ","), want)
	}
	if len(told) == 5 && (!strings.HasPrefix(told[3].Error, "health: ") || told[3].Digest == "" || told[4].Image != image(2) || told[4].Who == "") {
		t.Errorf("the failed deploy's and the rollback's announcements: %+v, %+v", told[3], told[4])
	}
	if !rec.has("warning: could not announce the rollback: channel down") {
		t.Error("a failed announcement is not reported")
	}

	// A fresh app whose only other release failed: nothing to go back to.
	e2, _ := newEngine(t, namespace(t))
	if _, err := e2.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	e2.Deploy(ctx, DeployOptions{Image: image(2), PodLabels: map[string]string{"kwok.liftoff.dev/behaviour": "crashloop"}})
	_, err = e2.Rollback(ctx, true)
	if failure.ClassOf(err) != failure.NotFound || !strings.Contains(err.Error(), "never ran a release that was live and good") || live(t, e2) != Blue {
		t.Fatalf("rollback with nothing good to return to: %v (live %s)", err, live(t, e2))
	}
}

// TestNewSlotStartsAsBigAsLive: a live slot scaled up since its deploy (as
// an autoscaler does under load) hands its count to the next release, which
// is ready at that count before the flip.
func TestNewSlotStartsAsBigAsLive(t *testing.T) {
	e, rec := newEngine(t, namespace(t))
	ctx := context.Background()
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(1)}); err != nil {
		t.Fatal(err)
	}
	if err := e.scale(ctx, Blue, 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "blue at 4", func() bool { _, r := replicas(t, e, Blue); return r == 4 })
	res, err := e.Deploy(ctx, DeployOptions{Image: image(2), Detach: true})
	if err != nil || res.Live != Green {
		t.Fatalf("%+v %v", res, err)
	}
	if d, r := replicas(t, e, Green); d != 4 || r != 4 || !rec.has("slot blue runs 4 replicas, more than the 2 configured") {
		t.Errorf("green at %d/%d, want 4 ready before the flip", r, d)
	}
}

// TestAutoscalerFollowsLive: the app's one autoscaler targets the live
// slot, moves with the flip and the rollback, never a parked or warm slot,
// and goes when autoscaling is turned off; someone else's of that name is
// left alone.
func TestAutoscalerFollowsLive(t *testing.T) {
	e, _ := newEngine(t, namespace(t))
	ctx := context.Background()
	e.ScaleDownDelay = time.Hour
	a := Autoscale{Min: 2, Max: 6, CPU: 70, RPS: 40}
	target := func() string {
		t.Helper()
		h, err := e.Kube.AutoscalingV2().HorizontalPodAutoscalers(e.Ref.Namespace).Get(ctx, e.HPAName(), metav1.GetOptions{})
		if err != nil {
			return "none"
		}
		if *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 6 || *h.Spec.Metrics[0].Resource.Target.AverageUtilization != 70 {
			t.Errorf("autoscaler spec: %+v", h.Spec)
		}
		// The requests-per-second target, as the API server stored it.
		if len(h.Spec.Metrics) != 2 || h.Spec.Metrics[1].Pods == nil || h.Spec.Metrics[1].Pods.Metric.Name != RPSMetric ||
			h.Spec.Metrics[1].Pods.Target.AverageValue.Value() != 40 {
			t.Errorf("autoscaler metrics: %+v", h.Spec.Metrics)
		}
		return h.Spec.ScaleTargetRef.Name
	}
	for i, want := range []string{"shortener-blue", "shortener-green"} {
		if _, err := e.Deploy(ctx, DeployOptions{Image: image(i + 1), Detach: true, Autoscale: a}); err != nil {
			t.Fatal(err)
		}
		if got := target(); got != want {
			t.Fatalf("deploy %d: the autoscaler targets %s, want %s", i+1, got, want)
		}
	}
	if _, err := e.Rollback(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != "shortener-blue" {
		t.Fatalf("after rollback the autoscaler targets %s", got)
	}
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(3), Detach: true}); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != "none" {
		t.Fatalf("autoscale off: the autoscaler still targets %s", got)
	}
	if _, err := e.Deploy(ctx, DeployOptions{Image: image(4), Autoscale: Autoscale{Min: 3, Max: 1, CPU: 70}}); failure.ClassOf(err) != failure.Config {
		t.Errorf("bad bounds: %v", err)
	}
}
