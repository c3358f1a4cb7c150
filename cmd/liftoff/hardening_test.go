package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/liftoff-dev/liftoff/internal/kexec"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestE2EHardening is the stack's reachability, logins and limits on the
// real node:
//   - the NetworkPolicies the cluster holds, evaluated against the pods
//     that run: another namespace reaches the app's port (no ingress
//     namespaces are set) but not PostgreSQL, Valkey, the registry or the
//     app's metrics; a pod of the app's namespace without the client labels
//     does not reach PostgreSQL or Valkey; the app and the backup job do;
//     the nodes reach the registry;
//   - the same with real packets, the node enforcing the policies: pods in
//     another namespace and in the app's dial each service;
//   - Valkey refuses commands without the password;
//   - the app logs in as a role that is no superuser, and the bootstrap
//     superuser has no password left;
//   - the largest listings, many at once, stream within the pod's memory;
//   - a database password rotation (config set, then up) under load fails
//     no request, and the old login is retired.
func TestE2EHardening(t *testing.T) {
	t.Parallel()
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true, NetworkPolicies: true})
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	ns := "shortener"
	standIns := cl.StandIns(t)
	args := []string{"init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set", "observability=false", "--set", "bake=0s", "--set", "scaleDownDelay=1s", "--set", "podCIDRs=" + cl.Node.PodCIDR}
	for k, v := range standIns {
		args = append(args, "--set", k+"="+v)
	}
	c.mustRun(args...)
	up := []string{"up", "-s", "dev", "--yes", "--platform", "linux/amd64", "--smoke", "on"}
	first := c.mustRun(up...)
	for _, l := range strings.Split(first.err, "\n") {
		if strings.Contains(l, "database login") || strings.Contains(l, "retire") {
			t.Logf("first up: %s", l)
		}
	}
	base := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live URL", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, base); return err == nil })
	code := shorten(t, base, "https://example.com/hardened")
	if status := redirect(t, base, code); status != http.StatusFound {
		t.Fatalf("redirect: %d", status)
	}
	if cache := readiness(t, base)["cache"]; cache != "up" {
		t.Errorf("the app's cache with a password: %q", cache)
	}

	// Who reaches what, first by NetworkPolicy's rules: the policies the
	// cluster holds, evaluated against the pods that run and against pods
	// that would (the backup job's): the labels liftoff's workloads carry
	// must be the ones its policies admit.
	pod := func(ns, name string) *corev1.Pod {
		p, err := cl.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	appPods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "liftoff.dev/slot=" + selector(t, cl, ns)})
	if err != nil || len(appPods.Items) == 0 {
		t.Fatalf("the live slot's pods: %v", err)
	}
	backupJob, err := cl.Client.BatchV1().CronJobs(ns).Get(ctx, "backup", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app := &appPods.Items[0]
	// Pods that do not run here get addresses in the node's pod range, as
	// they would.
	podIP := func(n int) string { return strings.TrimSuffix(cl.Node.PodCIDR, "0/24") + fmt.Sprint(n) }
	sources := map[string]peer{
		"intruder":  {pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "intruder", Name: "intruder"}, Status: corev1.PodStatus{PodIP: podIP(251)}}},
		"neighbour": {pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "neighbour"}, Status: corev1.PodStatus{PodIP: podIP(252)}}},
		"app":       {pod: app},
		"backup":    {pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Labels: backupJob.Spec.JobTemplate.Spec.Template.Labels}, Status: corev1.PodStatus{PodIP: podIP(253)}}},
		"node":      {ip: cl.Node.IP},
	}
	targets := map[string]struct {
		pod  *corev1.Pod
		port int
	}{
		"postgres": {pod(ns, "postgres-0"), 5432}, "valkey": {pod(ns, "valkey-0"), 6379}, "registry": {pod(ns, "registry-0"), 5000},
		"app": {app, 8080}, "app metrics": {app, 9091},
	}
	policies, err := cl.Client.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil || len(policies.Items) < 4 {
		t.Fatalf("NetworkPolicies in the cluster: %v %v", policies, err)
	}
	for _, tc := range []struct {
		from, to string
		admitted bool
	}{
		{"intruder", "app", true}, {"intruder", "postgres", false}, {"intruder", "valkey", false},
		{"intruder", "registry", false}, {"intruder", "app metrics", false},
		{"neighbour", "postgres", false}, {"neighbour", "valkey", false}, {"neighbour", "app", true},
		{"app", "postgres", true}, {"app", "valkey", true},
		{"backup", "postgres", true}, {"backup", "valkey", false},
		{"node", "registry", true}, {"node", "app", true}, {"node", "app metrics", true}, {"node", "postgres", false},
	} {
		dst := targets[tc.to]
		if got := admits(policies.Items, sources[tc.from], dst.pod, dst.port); got != tc.admitted {
			t.Errorf("the policies admit %s to %s (port %d): %v, want %v", tc.from, tc.to, dst.port, got, tc.admitted)
		}
	}

	// And with real packets: the node enforces NetworkPolicies (the agent
	// kind runs, testenv's NetworkPolicies option). Pods that run the echo
	// server dial each service: an intruder in another namespace, a
	// neighbour in the app's namespace without the client labels, and a
	// client with them. A dropped connection times out.
	echo := cl.PushImage(t, "echo")
	cl.CreateNamespace(t, "intruder")
	dialers := map[string]*corev1.Pod{
		"intruder":  {ObjectMeta: metav1.ObjectMeta{Namespace: "intruder", Name: "intruder"}},
		"neighbour": {ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "neighbour"}},
		"client": {ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "client",
			Labels: map[string]string{"liftoff.dev/postgres-client": "true", "liftoff.dev/valkey-client": "true"}}},
	}
	for _, p := range dialers {
		p.Spec = corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: echo}}}
		if _, err := cl.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, p := range dialers {
		waitUntil(t, name+" running", func() bool {
			got, err := cl.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			return err == nil && got.Status.Phase == corev1.PodRunning
		})
	}
	before := netpolVerdicts(t, cl)
	dialed := time.Now()
	for _, tc := range []struct {
		from, to, want string
	}{
		{"intruder", "app", "open"}, {"intruder", "postgres", "timeout"}, {"intruder", "valkey", "timeout"},
		{"intruder", "registry", "timeout"}, {"intruder", "app metrics", "timeout"},
		{"neighbour", "postgres", "timeout"}, {"neighbour", "valkey", "timeout"}, {"neighbour", "app", "open"},
		{"client", "postgres", "open"}, {"client", "valkey", "open"},
	} {
		dst := targets[tc.to]
		out, _ := execOut(t, cl, dialers[tc.from].Namespace, tc.from, "echo", "/app/server", "dial", net.JoinHostPort(dst.pod.Status.PodIP, fmt.Sprint(dst.port)))
		if got, _, _ := strings.Cut(strings.TrimSpace(out), ":"); got != tc.want {
			t.Errorf("%s dialling %s (%s:%d): %q, want %s", tc.from, tc.to, dst.pod.Status.PodIP, dst.port, strings.TrimSpace(out), tc.want)
		}
	}
	// The timeouts are the agent's verdicts, not something else's: it
	// dropped at least the six dials' first packets.
	after := netpolVerdicts(t, cl)
	if dropped := after["drop"] - before["drop"]; dropped < 6 {
		t.Errorf("the NetworkPolicy agent dropped %.0f connections' packets during the dials, want at least the 6 refused dials'", dropped)
	}
	t.Logf("hardening figures: 10 dials with the node enforcing NetworkPolicies in %s; the agent's verdicts so far: %.0f accepted, %.0f dropped",
		time.Since(dialed).Round(100*time.Millisecond), after["accept"], after["drop"])

	// Valkey wants the password, even from its own pod.
	out, _ := execOut(t, cl, ns, "valkey-0", "valkey", "valkey-cli", "-h", "127.0.0.1", "SET", "intruder", "1")
	if !strings.Contains(out, "NOAUTH") {
		t.Errorf("valkey without a password: %q", out)
	}

	// The app's login is no superuser; the bootstrap superuser has no password.
	login := databaseLogin(t, cl, ns)
	roles := superuserQuery(t, cl, ns, fmt.Sprintf(
		"SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = '%s' UNION ALL SELECT rolpassword IS NULL, false, false FROM pg_authid WHERE rolname = 'app'", login))
	if roles != "f|f|f\nt|f|f" {
		t.Errorf("the app's login %s (super, createrole, createdb), then the superuser's password is null: %q", login, roles)
	}

	// The largest response allowed, several at once, within the pod's
	// memory limit (128 MiB): a page of 1,000 events whose details are
	// 64 KiB each (rows from before the 8 KiB limit), 64 MiB a page. Four
	// such pages are asked for at once and each is read for its first
	// 4 MiB: a server that built a page in memory before sending it would
	// hold 256 MiB across the four and be OOM-killed before the first
	// byte; a streaming one holds a row per request while the client
	// reads. Then one page is read to its end and counted. How fast a page
	// streams is a figure, not a bound (under CI's load four full pages at
	// once overran the request's 10 s; a benchmark's business, not this
	// test's).
	// The page's size and the pod's memory are the point here, not how fast
	// it streams: on a loaded machine a 64 MiB page took 10.5 s and was cut
	// at the request's default 10 s. Operators raise that budget the same
	// way.
	c.mustRun("secrets", "set", "-s", "dev", "REQUEST_TIMEOUT=2m")
	superuserQuery(t, cl, ns, "INSERT INTO events (url_id, event_type, details) SELECT 987654, 'legacy', jsonb_build_object('blob', repeat('x', 65536)) FROM generate_series(1, 1000)")
	largest := base + "/events?url_id=987654&per_page=1000"
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(largest)
			if err != nil {
				t.Errorf("largest page: %v", err)
				return
			}
			defer resp.Body.Close()
			n, err := io.CopyN(io.Discard, resp.Body, 4<<20)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("largest page: %d, %d bytes read, %v", resp.StatusCode, n, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("hardening figures: 4 pages of 64 MiB at once, their first 4 MiB each in %s", time.Since(start).Round(10*time.Millisecond))
	start = time.Now()
	resp, err := http.Get(largest)
	if err != nil {
		t.Fatalf("largest page: %v", err)
	}
	var page []json.RawMessage
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(page) != 1000 {
		t.Errorf("largest page: %d, %d events, %v", resp.StatusCode, len(page), err)
	}
	t.Logf("hardening figures: a page of 1,000 64-KiB events (64 MiB) read whole in %s", time.Since(start).Round(10*time.Millisecond))
	live, _ := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "liftoff.dev/slot=" + selector(t, cl, ns)})
	for _, p := range live.Items {
		for _, st := range p.Status.ContainerStatuses {
			if st.RestartCount != 0 {
				t.Errorf("pod %s restarted under the largest pages (%d; last %+v)", p.Name, st.RestartCount, st.LastTerminationState.Terminated)
			}
		}
	}

	// A password rotation under load: no request fails, the old login goes.
	load := startLoad(base + "/" + code)
	c.mustRun("config", "set", "-s", "dev", "--secret", "databasePassword", "Rotated"+strings.Repeat("x", 24))
	start = time.Now()
	r := c.mustRun(up...)
	load.stop()
	t.Logf("hardening figures: rotation up %s, %d reads during it, %d failed", time.Since(start).Round(time.Second), load.ok.Load()+load.failed.Load(), load.failed.Load())
	if load.failed.Load() != 0 || load.ok.Load() == 0 {
		t.Errorf("reads during the rotation: %d failed of %d", load.failed.Load(), load.ok.Load()+load.failed.Load())
	}
	rotated := databaseLogin(t, cl, ns)
	if rotated == login {
		t.Fatalf("the rotation kept the login %s", login)
	}
	shorten(t, base, "https://example.com/after-rotation") // writes work as the new login
	// The old slot keeps its sessions while it stays warm (scaleDownDelay,
	// 1s here); the next liftoff command parks it, and once its pods are
	// gone the next up or deploy retires the old login.
	retired := func(out string) bool {
		i := strings.Index(out, "retired database logins")
		return i >= 0 && strings.Contains(out[i:], login)
	}
	for i := 0; i < 3 && !retired(r.err); i++ {
		deadline := time.Now().Add(90 * time.Second)
		for superuserQuery(t, cl, ns, fmt.Sprintf("SELECT count(*) FROM pg_stat_activity WHERE usename = '%s'", login)) != "0" && time.Now().Before(deadline) {
			time.Sleep(time.Second)
		}
		r = c.mustRun(up...)
	}
	if !retired(r.err) {
		t.Errorf("no up retired %s:\n%s", login, r.err)
	}
	if got := superuserQuery(t, cl, ns, fmt.Sprintf("SELECT rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname = '%s'", login)); got != "f|t" {
		t.Errorf("the old login %s after the rotation (can log in, no password): %q", login, got)
	}
	c.mustRun("destroy", "-s", "dev", "--yes", "--delete-data")
}

// peer is a connection's source: a pod, or an address that is none (a node).
type peer struct {
	pod *corev1.Pod
	ip  string
}

// admits evaluates NetworkPolicies as the API defines them: a connection
// from src to port on dst passes when no policy selects dst for ingress or
// one of those admits src on the port, and likewise for src's egress.
func admits(policies []networkingv1.NetworkPolicy, src peer, dst *corev1.Pod, port int) bool {
	ip := src.ip
	if src.pod != nil {
		ip = src.pod.Status.PodIP
	}
	nsLabels := func(ns string) labels.Set { return labels.Set{"kubernetes.io/metadata.name": ns} }
	matches := func(sel *metav1.LabelSelector, set labels.Set) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		return err == nil && s.Matches(set)
	}
	peerMatches := func(p networkingv1.NetworkPolicyPeer, policyNS string, pod *corev1.Pod, ip string) bool {
		if p.IPBlock != nil {
			_, cidr, _ := net.ParseCIDR(p.IPBlock.CIDR)
			if cidr == nil || !cidr.Contains(net.ParseIP(ip)) {
				return false
			}
			for _, e := range p.IPBlock.Except {
				if _, ex, _ := net.ParseCIDR(e); ex != nil && ex.Contains(net.ParseIP(ip)) {
					return false
				}
			}
			return true
		}
		if pod == nil { // not a pod: only ipBlocks name it
			return false
		}
		if p.NamespaceSelector == nil && pod.Namespace != policyNS || p.NamespaceSelector != nil && !matches(p.NamespaceSelector, nsLabels(pod.Namespace)) {
			return false
		}
		return p.PodSelector == nil || matches(p.PodSelector, pod.Labels)
	}
	portMatches := func(ports []networkingv1.NetworkPolicyPort) bool {
		if len(ports) == 0 {
			return true
		}
		for _, p := range ports {
			if (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) && (p.Port == nil || p.Port.IntValue() == port) {
				return true
			}
		}
		return false
	}
	has := func(p networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
		if len(p.Spec.PolicyTypes) == 0 {
			return typ == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
		}
		return slices.Contains(p.Spec.PolicyTypes, typ)
	}
	// Ingress at dst.
	selected, in := false, false
	for _, p := range policies {
		if p.Namespace != dst.Namespace || !has(p, networkingv1.PolicyTypeIngress) || !matches(&p.Spec.PodSelector, dst.Labels) {
			continue
		}
		selected = true
		for _, r := range p.Spec.Ingress {
			if portMatches(r.Ports) && (len(r.From) == 0 || slices.ContainsFunc(r.From, func(f networkingv1.NetworkPolicyPeer) bool { return peerMatches(f, p.Namespace, src.pod, ip) })) {
				in = true
			}
		}
	}
	if selected && !in {
		return false
	}
	// Egress at src (a pod's own policies).
	if src.pod == nil {
		return true
	}
	selected, out := false, false
	for _, p := range policies {
		if p.Namespace != src.pod.Namespace || !has(p, networkingv1.PolicyTypeEgress) || !matches(&p.Spec.PodSelector, src.pod.Labels) {
			continue
		}
		selected = true
		for _, r := range p.Spec.Egress {
			if portMatches(r.Ports) && (len(r.To) == 0 || slices.ContainsFunc(r.To, func(f networkingv1.NetworkPolicyPeer) bool { return peerMatches(f, p.Namespace, dst, dst.Status.PodIP) })) {
				out = true
			}
		}
	}
	return !selected || out
}

// netpolVerdicts reads the node's NetworkPolicy agent's verdicts so far, by
// verdict ("accept", "drop"), each a count of first packets judged.
func netpolVerdicts(t *testing.T, cl *testenv.Cluster) map[string]float64 {
	t.Helper()
	resp, err := http.Get(cl.NetworkPolicyMetrics)
	if err != nil {
		t.Fatalf("the NetworkPolicy agent's metrics: %v", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the NetworkPolicy agent's metrics: %v", err)
	}
	out := map[string]float64{}
	for _, m := range fams["kube_network_policies_packet_count"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "verdict" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// execOut runs a command in a pod's container and returns its output.
func execOut(t *testing.T, cl *testenv.Cluster, ns, pod, container string, cmd ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer // apart: the streams are copied concurrently
	code, err := kexec.Run(context.Background(), cl.Client, cl.Rest, kexec.Options{Namespace: ns, Pod: pod, Container: container, Command: cmd, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatalf("exec %v in %s/%s: %v", cmd, ns, pod, err)
	}
	return out.String() + errb.String(), code
}

// superuserQuery runs a query as the bootstrap superuser over the PostgreSQL
// pod's socket and returns its unaligned rows.
func superuserQuery(t *testing.T, cl *testenv.Cluster, ns, query string) string {
	t.Helper()
	out, code := execOut(t, cl, ns, "postgres-0", "postgres", "psql", "-X", "-A", "-t", "-U", "app", "-d", "app", "-c", query)
	if code != 0 {
		t.Fatalf("psql: %s", out)
	}
	return strings.TrimSpace(out)
}

// databaseLogin is the user of the app's DATABASE_URL, from its Secret.
func databaseLogin(t *testing.T, cl *testenv.Cluster, ns string) string {
	t.Helper()
	secrets, err := cl.Client.CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if raw, ok := s.Data["DATABASE_URL"]; ok {
			u, err := url.Parse(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			return u.User.Username()
		}
	}
	t.Fatal("no Secret with DATABASE_URL")
	return ""
}

// readiness is the app's /ready report.
func readiness(t *testing.T, base string) map[string]string {
	t.Helper()
	resp, err := http.Get(base + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}
