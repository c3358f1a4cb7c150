package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// TestE2EUp is `make e2e-up`: the real pulumi CLI and Kubernetes provider on
// a temp file backend, the local cluster with a real node, the kubeconfig
// target's defaults (in-cluster registry, PostgreSQL and Valkey, from the
// stand-ins of their official images, as a mirror serves them), the smoke
// test on, and load through the live Service from the first up to the last:
//  1. init --target kubeconfig, up: the in-cluster stack created by the engine, the image pushed to the
//     in-cluster registry and pulled from it by the node, blue live; status agrees; the summary's URL serves
//  2. change the app, up again: the infrastructure is unchanged, green goes live
//  3. SIGKILL up in its deploy phase: the next up recovers the locks and the slot, and finishes
//  4. a preview stack on the parent's cluster, then its destroy
//  5. destroy: releases, Services and namespace gone, the stack gone from the backend
//
// No request of the load fails at any step.
func TestE2EUp(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	ns := "shop"
	step := func(name string) { t.Logf("=== %s", name) }
	run := func(args ...string) result {
		t.Helper()
		return c.mustRun(args...)
	}

	step("liftoff init")
	initArgs := []string{"init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set", "namespace=" + ns, "--set", "observability=false", "--set", "bake=0s"}
	for k, v := range cl.StandIns(t) {
		initArgs = append(initArgs, "--set", k+"="+v)
	}
	run(initArgs...)
	upArgs := []string{"up", "--yes", "--platform", "linux/amd64", "--smoke", "on"}

	step("liftoff up (first)")
	r := run(append(upArgs, "--json")...)
	sum := summaryOf(t, r.out)
	if !strings.Contains(sum.Message, "slot blue serves shortener") || sum.Outputs["image"] == nil {
		t.Fatalf("summary: %s", r.out)
	}
	if live := selector(t, cl, ns); live != "blue" {
		t.Fatalf("live slot %q", live)
	}
	blueImage := imageOf(t, cl, ns, "blue")
	if !strings.HasPrefix(blueImage, "localhost:30500/shortener@sha256:") {
		t.Fatalf("blue runs %s, not an image of the in-cluster registry", blueImage)
	}
	sec, err := cl.Client.CoreV1().Secrets(ns).Get(ctx, "shortener-env", metav1.GetOptions{})
	// The app logs in to both with passwords of their own: PostgreSQL as its
	// non-superuser login, Valkey as its ACL user.
	if db, cache := string(sec.Data["DATABASE_URL"]), string(sec.Data["CACHE_URL"]); err != nil ||
		!strings.HasPrefix(db, "postgres://app_") || !strings.Contains(db, "@postgres.shop.svc:5432/app") ||
		!strings.HasPrefix(cache, "redis://app:") || !strings.HasSuffix(cache, "@valkey.shop.svc:6379/0") {
		t.Fatalf("app secret: %v %q %q", err, sec.Data["DATABASE_URL"], sec.Data["CACHE_URL"])
	}
	st := run("status")
	if !strings.Contains(st.out, "live slot: blue") || !strings.Contains(st.out, "update succeeded") {
		t.Errorf("status disagrees:\n%s", st.out)
	}
	url, _ := sum.Outputs["url"].(string)
	if want := "http://" + clusterIP(t, cl, ns, "shortener"); url != want {
		t.Fatalf("the summary's url is %q, want the live Service's %s", url, want)
	}
	waitUntil(t, "the summary's URL answers", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, url); return err == nil })
	load := testenv.StartLoad(url+"/"+shorten(t, url, "https://example.com/up"), 8, func(s int) bool { return s == http.StatusFound })
	defer load.Stop()

	step("change the app, liftoff up (second)")
	c.changeApp()
	r = run(append(upArgs, "--json")...)
	changes, _ := summaryOf(t, r.out).Fields()["changes"].(map[string]any)
	for op, n := range changes {
		if op != "same" && n.(float64) > 0 {
			t.Errorf("the infrastructure changed on an app-only change: %v", changes)
		}
	}
	if selector(t, cl, ns) != "green" || imageOf(t, cl, ns, "green") == blueImage {
		t.Fatalf("second up: live %s, green runs %s", selector(t, cl, ns), imageOf(t, cl, ns, "green"))
	}
	if s := load.Stats(); s.Failed > 0 {
		t.Errorf("after the second up: %s", s)
	}

	step("SIGKILL liftoff up during its deploy phase")
	// New pods stop being scheduled, so the deploy waits on them (first on
	// the migration plan's Job, under the deploy lock); the push before it
	// still reaches the in-cluster registry through the kubelet.
	scheduler := cl.Component("kube-scheduler")
	scheduler.Signal(syscall.SIGSTOP)
	// Nothing changed since the last up: --force-deploy makes it deploy anyway.
	cmd := c.process(append(upArgs, "--force-deploy")...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inDeploy := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "==> deploy") {
				close(inDeploy)
				io.Copy(io.Discard, stderr)
				return
			}
		}
	}()
	select {
	case <-inDeploy:
	case <-time.After(5 * time.Minute):
		scheduler.Signal(syscall.SIGCONT)
		t.Fatal("up never reached its deploy phase")
	}
	waitUntil(t, "the deploy lock", func() bool {
		l, err := cl.Client.CoordinationV1().Leases(ns).Get(ctx, "shortener-deploy", metav1.GetOptions{})
		return err == nil && strings.Contains(*l.Spec.HolderIdentity, fmt.Sprintf("pid %d", cmd.Process.Pid))
	})
	killTree(t, cmd)
	scheduler.Signal(syscall.SIGCONT)
	r = run(append(upArgs, "--force-deploy")...)
	for _, want := range []string{"broke a stale lock", "took over the deploy lock"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("recovery did not say %q:\n%s", want, r.err)
		}
	}
	if selector(t, cl, ns) != "blue" {
		t.Errorf("after recovery, live slot %s", selector(t, cl, ns))
	}
	if s := load.Stats(); s.Failed > 0 {
		t.Errorf("after the recovery: %s", s)
	}

	step("liftoff up --preview-of dev (a pull request's preview on the parent's cluster, by a CI job with credentials of its own)")
	// The job has its own passphrase (dev's state stays closed to it), its
	// own cluster user and, for dev's in-cluster registry, its own login.
	prNS := "shortener-pr-42"
	previewKC, err := cl.ServiceAccountKubeconfig(ctx, "kube-system", "liftoff-previews", "cluster-admin")
	if err != nil {
		t.Fatal(err)
	}
	job := c.as(map[string]string{"LIFTOFF_PASSPHRASE": "the preview job's own passphrase"})
	job.mustRun("init", "-s", "pr-42", "--target", "kubeconfig", "--preview-of", "dev", "--set", "cache=none")
	prUp := []string{"up", "-s", "pr-42", "--preview-of", "dev", "--kubeconfig", previewKC, "--ttl", "2h", "--yes", "--platform", "linux/amd64", "--smoke", "on", "--json"}
	if r := job.run(prUp...); r.code != 3 || !strings.Contains(r.out, "LIFTOFF_REGISTRY_USERNAME") || !strings.Contains(r.out, "registryPassword") {
		t.Errorf("a preview without the registry login dev keeps secret: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, prNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused preview made its namespace: %v", err)
	}
	registryPassword := strings.TrimSpace(c.mustRun("config", "get", "registryPassword", "-s", "dev", "--show-secrets").out) // the owner hands it to the job
	job = job.as(map[string]string{"LIFTOFF_REGISTRY_USERNAME": "liftoff", "LIFTOFF_REGISTRY_PASSWORD": registryPassword})
	started := time.Now()
	r = job.mustRun(prUp...)
	sum = summaryOf(t, r.out)
	if u, _ := sum.Outputs["url"].(string); u != "http://"+clusterIP(t, cl, prNS, "shortener") || sum.Outputs["preview_of"] != "dev" {
		t.Errorf("preview summary: %+v", sum.Outputs)
	}
	pns, err := cl.Client.CoreV1().Namespaces().Get(ctx, prNS, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("preview namespace: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, pns.Annotations["liftoff.dev/expires"])
	if err != nil || pns.Labels["liftoff.dev/preview-of"] != "dev" || exp.Before(started.Add(2*time.Hour-time.Minute)) || exp.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("preview namespace metadata: labels %v annotations %v", pns.Labels, pns.Annotations)
	}
	if img := imageOf(t, cl, prNS, "blue"); !strings.HasPrefix(img, "localhost:30500/shortener@") {
		t.Errorf("preview runs %s, not an image in the parent's registry", img)
	}
	upTook := time.Since(started)
	parentLive := selector(t, cl, ns)
	started = time.Now()
	job.mustRun("destroy", "-s", "pr-42", "--yes")
	t.Logf("preview figures: up --preview-of (infrastructure, build with a warm cache, push, deploy) %s; destroy %s", upTook.Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, prNS, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("preview namespace still there: %v", err)
	}
	if selector(t, cl, ns) != parentLive {
		t.Errorf("destroying the preview touched the parent: live %s, was %s", selector(t, cl, ns), parentLive)
	}

	if s := load.Stop(); s.Failed > 0 || s.Total == 0 {
		t.Errorf("load from the first up to the preview's destroy: %s", s)
	} else {
		t.Logf("load from the first up to the preview's destroy: %s", s)
	}

	step("liftoff destroy")
	// What a cloud controller would turn into a load balancer and a disk:
	// destroy deletes both first and waits for the finalizer, which a
	// stand-in for the controller releases once deletion starts.
	if _, err := cl.Client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "edge", Finalizers: []string{"service.kubernetes.io/load-balancer-cleanup"}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "edge"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		for i := 0; i < 600; i++ {
			svc, err := cl.Client.CoreV1().Services(ns).Get(ctx, "edge", metav1.GetOptions{})
			if err == nil && svc.DeletionTimestamp != nil {
				time.Sleep(time.Second)
				cl.Client.CoreV1().Services(ns).Patch(ctx, "edge", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	r = run("destroy", "--yes")
	<-released
	for _, want := range []string{"Service/LoadBalancer", "PersistentVolumeClaim", "left: nothing", "removed from the backend"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("destroy receipt lacks %q:\n%s", want, r.out)
		}
	}
	if !strings.Contains(r.err, "held by finalizer service.kubernetes.io/load-balancer-cleanup") {
		t.Logf("no progress line named the finalizer (the wait may have been shorter than one poll):\n%s", r.err)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s still exists: %v", ns, err)
	}
	rels, _ := action.NewList(helmConfig(t, cl, ns)).Run()
	if len(rels) != 0 {
		t.Errorf("releases left: %d", len(rels))
	}
	if left := leftovers(t, cl); len(left) > 0 {
		t.Errorf("destroy left in the cluster: %v", left)
	}
	r = c.mustRun("stacks", "ls", "--json")
	var ev struct{ Data map[string][]map[string]any }
	json.Unmarshal([]byte(strings.TrimSpace(r.out)), &ev)
	if len(ev.Data["stacks"]) != 0 {
		t.Errorf("stack still in the backend: %s", r.out)
	}
}

// leftovers lists what a destroyed stack must not leave: namespaces besides
// the cluster's own, claims, volumes, and Secrets anywhere.
func leftovers(t *testing.T, cl *testenv.Cluster) []string {
	t.Helper()
	ctx := context.Background()
	var left []string
	nss, err := cl.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss.Items {
		if n.Name != "default" && !strings.HasPrefix(n.Name, "kube-") {
			left = append(left, "Namespace/"+n.Name)
		}
	}
	pvcs, _ := cl.Client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	for _, p := range pvcs.Items {
		left = append(left, "PersistentVolumeClaim/"+p.Namespace+"/"+p.Name)
	}
	pvs, _ := cl.Client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	for _, p := range pvs.Items {
		left = append(left, "PersistentVolume/"+p.Name)
	}
	secrets, _ := cl.Client.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	for _, s := range secrets.Items {
		if !strings.HasPrefix(s.Namespace, "kube-") {
			left = append(left, "Secret/"+s.Namespace+"/"+s.Name)
		}
	}
	return left
}

// summaryOf is the summary event of a --json run.
func summaryOf(t *testing.T, out string) ui.Event {
	t.Helper()
	for _, ev := range validEvents(t, out) {
		if ev.Type == "summary" {
			return ev
		}
	}
	t.Fatalf("no summary event in:\n%s", out)
	return ui.Event{}
}

func selector(t *testing.T, cl *testenv.Cluster, ns string) string {
	t.Helper()
	svc, err := cl.Client.CoreV1().Services(ns).Get(context.Background(), "shortener", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.Selector["liftoff.dev/slot"]
}

func imageOf(t *testing.T, cl *testenv.Cluster, ns, slot string) string {
	t.Helper()
	d, err := cl.Client.AppsV1().Deployments(ns).Get(context.Background(), "shortener-"+slot, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 2m", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
