package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
)

// TestRealNode: pods of an image pushed to the cluster's registry run on the
// real node and answer on their pod IPs and on a ClusterIP, from the host
// and from another pod through the cluster DNS; logs and exec reach the
// container; names outside the cluster do not resolve; a pod that tolerates
// the kwok taint lands on the kwok node beside it. Then the cluster is torn
// down and the machine is checked for anything the node left behind.
func TestRealNode(t *testing.T) {
	before := machineSnapshot(t)
	c, err := NewCluster(t.TempDir(), RepoRoot(t), ClusterOptions{RealNode: true, Kwok: 1})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	closed := false
	defer func() {
		if !closed {
			c.Close()
		}
	}()
	ctx := context.Background()
	img := c.PushImage(t, "echo")
	labels := map[string]string{"app": "echo"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				NodeSelector: RealLabel,
				Containers: []corev1.Container{{Name: "echo", Image: img, Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt(8080)}}, PeriodSeconds: 1}}}}}}}
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt(8080)}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitUntil(t, c, "echo ready on the real node", func() bool {
		d, err := c.Client.AppsV1().Deployments("default").Get(ctx, "echo", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	})
	t.Logf("2 pods (image pulled from the cluster registry) ready in %s", time.Since(start).Round(10*time.Millisecond))
	pods, _ := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
	pod := pods.Items[0]
	if pod.Spec.NodeName != n.Name || !strings.HasPrefix(pod.Status.PodIP, strings.TrimSuffix(n.PodCIDR, "0/24")) {
		t.Fatalf("pod on %s with IP %s, want node %s in %s", pod.Spec.NodeName, pod.Status.PodIP, n.Name, n.PodCIDR)
	}
	if got := get(t, "http://"+pod.Status.PodIP+":8080/"); strings.TrimSpace(got) != pod.Name {
		t.Errorf("pod IP answered %q, want %q", got, pod.Name)
	}
	waitUntil(t, c, "the ClusterIP answers from the host", func() bool {
		resp, err := http.Get("http://" + svc.Spec.ClusterIP + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	if got := get(t, "http://"+pod.Status.PodIP+":8080/get?url=http://echo.default.svc.cluster.local/"); !strings.HasPrefix(got, "echo-") {
		t.Errorf("pod to Service by DNS name answered %q", got)
	}
	if got := get(t, "http://"+pod.Status.PodIP+":8080/resolve?name=echo.default.svc.cluster.local"); strings.TrimSpace(got) != svc.Spec.ClusterIP {
		t.Errorf("cluster DNS resolved the Service to %q, want %s", got, svc.Spec.ClusterIP)
	}
	if resp, err := http.Get("http://" + pod.Status.PodIP + ":8080/resolve?name=example.com"); err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a name outside the cluster resolved from a pod: %v %v", resp, err)
	}

	logs, err := c.Client.CoreV1().Pods("default").GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || !bytes.Contains(logs, []byte("request GET /")) {
		t.Errorf("logs through the API server: %v %q", err, logs)
	}
	// exec: the image holds nothing but the server, which cannot listen twice.
	var stdout, stderr bytes.Buffer
	req := c.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "echo", Command: []string{"/app/server"}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(c.Rest, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	if err == nil || !strings.Contains(err.Error(), "exit code 1") || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("exec: %v, stderr %q", err, stderr.String())
	}

	sim := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "simulated"}, Spec: corev1.PodSpec{NodeSelector: KwokLabel,
		Tolerations: []corev1.Toleration{{Key: KwokTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Containers:  []corev1.Container{{Name: "c", Image: "example.com/never-pulled:1"}}}}
	if _, err := c.Client.CoreV1().Pods("default").Create(ctx, sim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, c, "the tolerating pod running on kwok", func() bool {
		p, err := c.Client.CoreV1().Pods("default").Get(ctx, "simulated", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == c.Nodes[0] && p.Status.Phase == corev1.PodRunning
	})

	dir, k := n.dir, n.slot.n
	c.Close()
	closed = true
	after := machineSnapshot(t)
	if b, a := mine(before, after, k); b != a {
		t.Errorf("the machine changed across the cluster's life:\nbefore:\n%s\nafter:\n%s", b, a)
	}
	for _, p := range []string{dir, "/var/run/netns/" + n.NetNS, "/sys/fs/cgroup/memory" + n.cgroup} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
}

// counters are iptables-save's packet and byte counts, which traffic moves.
var counters = regexp.MustCompile(`\[\d+:\d+\]`)

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// machineSnapshot is what a node must leave as it found it: the sysctls
// kubelet changes, network namespaces, links, routes, the host's iptables
// rules, mounts, the cgroup roots and the default paths nodes write to. It
// is taken under the machine lock (no kubelet is starting) and keeps each
// line with the slot it belongs to, so nodes of other test packages running
// at the same time can be told apart: see mine.
func machineSnapshot(t *testing.T) []snapLine {
	t.Helper()
	unlock, err := machineLock()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	var lines []snapLine
	add := func(text string) { lines = append(lines, snapLine{slotOf(text), text}) }
	vals, err := readSysctls()
	if err != nil {
		t.Fatal(err)
	}
	add(fmt.Sprintf("sysctls %v", vals))
	for _, argv := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link", "show"}, {"ip", "route", "show"}, {"iptables-save"}} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v %s", argv, err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(l, "#") { // iptables-save's timestamps
				add(argv[0] + ": " + counters.ReplaceAllString(l, ""))
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			add("mount " + f[4])
		}
	}
	for _, m := range cgroupMounts() {
		ents, _ := os.ReadDir(m)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "liftoff-node-") {
				add("cgroup " + filepath.Join(m, e.Name()))
			}
		}
	}
	// Shared paths are this node's to judge only when no other node runs.
	if ents, _ := os.ReadDir(stateDir); len(ents) > 0 {
		lines = append(lines, snapLine{sharedBusy, "another node runs"})
	}
	for _, p := range append(sharedPaths, stateDir) {
		if _, err := os.Lstat(p); err == nil {
			lines = append(lines, snapLine{sharedSlot, "exists " + p})
		}
	}
	return lines
}

type snapLine struct {
	slot int // -1: no node's
	text string
}

const (
	sharedSlot = -2 // a shared default path
	sharedBusy = -3 // another node ran when the snapshot was taken
)

// nodeNames are how a node's slot shows in names and addresses.
var nodeNames = regexp.MustCompile(`liftoff-node-(\d+)|lf[hn](\d+)|10\.20[123]\.(\d+)\.`)

func slotOf(text string) int {
	m := nodeNames.FindStringSubmatch(text)
	for _, g := range m[min(1, len(m)):] {
		if n, err := strconv.Atoi(g); err == nil {
			return n
		}
	}
	return -1
}

// mine renders the lines of two snapshots that belong to no node or to
// slot k, and the shared paths when no other node ran at either time.
func mine(before, after []snapLine, k int) (string, string) {
	shared := true
	for _, l := range append(append([]snapLine{}, before...), after...) {
		shared = shared && l.slot != sharedBusy
	}
	render := func(lines []snapLine) string {
		var b strings.Builder
		for _, l := range lines {
			if l.slot == -1 || l.slot == k || (shared && l.slot == sharedSlot) {
				b.WriteString(l.text + "\n")
			}
		}
		return b.String()
	}
	return render(before), render(after)
}

// TestMain doubles as the helper TestRealNodeKilled kills.
func TestMain(m *testing.M) {
	if os.Getenv("TESTENV_NODE_HELPER") == "1" {
		os.Exit(nodeHelper())
	}
	os.Exit(m.Run())
}

// nodeHelper starts a cluster with a real node running one pod, says so,
// and waits to be killed.
func nodeHelper() int {
	root, err := Root()
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	dir, _ := os.MkdirTemp("", "node-helper")
	c, err := NewCluster(dir, root, ClusterOptions{RealNode: true})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	ref, err := pushLayout(filepath.Join(ImagesDir(root), "echo"), c.Registry.Host+"/testenv/echo")
	if err == nil {
		_, err = c.Client.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "echo", Image: ref}}}}, metav1.CreateOptions{})
	}
	for err == nil {
		p, gerr := c.Client.CoreV1().Pods("default").Get(context.Background(), "echo", metav1.GetOptions{})
		if gerr == nil && p.Status.Phase == corev1.PodRunning {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Printf("READY %d %s\n", c.Node.slot.n, dir)
	select {}
}

// TestRealNodeKilled: a process running a real node is SIGKILLed, as a test
// binary hitting its timeout is. Its kubelet and containerd die with it, but
// its containers, their shims, mounts, cgroups and network namespace stay;
// the next node to start anywhere on the machine removes them.
func TestRealNodeKilled(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "TESTENV_NODE_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 4096)
		n, _ := io.ReadAtLeast(out, b, 1)
		line <- string(b[:n])
	}()
	var got string
	select {
	case got = <-line:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatal("the helper never started its node")
	}
	var k int
	var clusterDir string
	if _, err := fmt.Sscanf(got, "READY %d %s", &k, &clusterDir); err != nil {
		cmd.Process.Kill()
		t.Fatalf("helper: %q", got)
	}
	defer os.RemoveAll(clusterDir)
	dead := nodeInSlot(k)
	cmd.Process.Kill()
	cmd.Wait()
	if len(shimsOf(dead.path("containerd.sock"))) == 0 {
		t.Fatal("the killed node's shims are gone already: nothing to test")
	}
	if _, err := os.Stat(dead.netnsPath()); err != nil {
		t.Fatalf("the killed node's namespace is gone already: %v", err)
	}

	c := StartClusterWith(t, ClusterOptions{RealNode: true})
	c.Close()
	if sh := shimsOf(dead.path("containerd.sock")); len(sh) > 0 {
		t.Errorf("shims of the killed node still run: %+v", sh)
	}
	if pids := cgroupPIDs(dead.cgroup); len(pids) > 0 {
		t.Errorf("containers of the killed node still run: %v", pids)
	}
	for _, p := range []string{dead.dir, dead.netnsPath(), "/sys/fs/cgroup/pids" + dead.cgroup, slotPath(k)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	if m := mountsUnder(dead.dir); len(m) > 0 {
		t.Errorf("mounts of the killed node remain: %v", m)
	}
}
