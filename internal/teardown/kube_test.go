package teardown

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var cluster *testenv.Cluster

func TestMain(m *testing.M) {
	os.Exit(testenv.MainWithCluster(m, testenv.KwokOnly, func(c *testenv.Cluster) { cluster = c }))
}

// log records what the sweep reports.
type log struct {
	t       testing.TB
	mu      sync.Mutex
	infos   []string
	waiting []string
}

func (l *log) Infof(f string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, fmt.Sprintf(f, a...))
	l.t.Logf(f, a...)
}

func (l *log) Waiting(w string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting = append(l.waiting, w)
}

func (l *log) sawWaiting(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.waiting, func(w string) bool { return strings.Contains(w, s) })
}

const (
	lbFinalizer      = "service.kubernetes.io/load-balancer-cleanup"
	ingressFinalizer = "ingress.k8s.aws/resources"
)

// must fails the test on a client call's error: must(t)(client.Create(...)).
func must(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func namespace(t *testing.T, kube kubernetes.Interface, name string) {
	must(t)(kube.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}))
}

func lbService(t *testing.T, kube kubernetes.Interface, ns, name string, finalizers ...string) {
	must(t)(kube.CoreV1().Services(ns).Create(context.Background(), newLBService(name, finalizers...), metav1.CreateOptions{}))
}

func newLBService(name string, finalizers ...string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Finalizers: finalizers},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

// claim creates a PersistentVolume (a CSI disk with the given reclaim policy)
// pre-bound to a new claim.
func claim(t *testing.T, kube kubernetes.Interface, ns, name string, policy corev1.PersistentVolumeReclaimPolicy) string {
	ctx := context.Background()
	pv := ns + "-" + name
	size := resource.MustParse("1Gi")
	must(t)(kube.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pv, Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity: corev1.ResourceList{corev1.ResourceStorage: size}, AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: policy, StorageClassName: "gp3",
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "ebs.csi.aws.com", VolumeHandle: "vol-" + pv}},
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: name},
		},
	}, metav1.CreateOptions{}))
	sc := "gp3"
	must(t)(kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: &sc,
			VolumeName: pv, Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}},
	}, metav1.CreateOptions{}))
	return pv
}

// cloud stands in for the controllers that own the cloud side: the load
// balancer and ingress controllers release their finalizers a moment after
// deletion starts, and the CSI provisioner deletes a volume once its claim
// is gone. It never touches what stuck names.
func cloud(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string, stuck ...string) {
	release := func(kind, name string, deleting bool, patch func() error) {
		if deleting && !slices.Contains(stuck, name) {
			time.Sleep(300 * time.Millisecond)
			if err := patch(); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("release %s %s: %v", kind, name, err)
			}
		}
	}
	drop := []byte(`{"metadata":{"finalizers":null}}`)
	for ctx.Err() == nil {
		svcs, _ := kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if svcs != nil {
			for _, s := range svcs.Items {
				release("service", s.Name, s.DeletionTimestamp != nil, func() error {
					_, err := kube.CoreV1().Services(ns).Patch(ctx, s.Name, types.MergePatchType, drop, metav1.PatchOptions{})
					return err
				})
			}
		}
		ings, _ := kube.NetworkingV1().Ingresses(ns).List(ctx, metav1.ListOptions{})
		if ings != nil {
			for _, i := range ings.Items {
				release("ingress", i.Name, i.DeletionTimestamp != nil, func() error {
					_, err := kube.NetworkingV1().Ingresses(ns).Patch(ctx, i.Name, types.MergePatchType, drop, metav1.PatchOptions{})
					return err
				})
			}
		}
		pvs, _ := kube.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if pvs != nil {
			for _, pv := range pvs.Items {
				if pv.Spec.ClaimRef == nil || pv.Spec.ClaimRef.Namespace != ns || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
					continue
				}
				_, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pv.Spec.ClaimRef.Name, metav1.GetOptions{})
				release("volume", pv.Name, apierrors.IsNotFound(err), func() error {
					return kube.CoreV1().PersistentVolumes().Delete(ctx, pv.Name, metav1.DeleteOptions{})
				})
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func kinds(items []Item) []string {
	var s []string
	for _, i := range items {
		s = append(s, i.Kind+" "+i.Name)
	}
	slices.Sort(s)
	return s
}

// TestSweepWaitsForCloudResources: load balancer Services, Ingresses and
// claims (with the pod mounting one) are deleted, and the sweep returns only
// once their finalizers are released and the claim's volume is gone; other
// Services and other namespaces are untouched.
func TestSweepWaitsForCloudResources(t *testing.T) {
	kube := cluster.Client
	ctx := context.Background()
	namespace(t, kube, "shop")
	namespace(t, kube, "neighbour")
	lbService(t, kube, "shop", "web", lbFinalizer)
	must(t)(kube.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "internal"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "x"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}))
	lbService(t, kube, "neighbour", "keep", lbFinalizer)
	must(t)(kube.NetworkingV1().Ingresses("shop").Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Finalizers: []string{ingressFinalizer}},
		Spec:       networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}, metav1.CreateOptions{}))
	pv := claim(t, kube, "shop", "data", corev1.PersistentVolumeReclaimDelete)
	// A scheduled pod mounting the claim: the pvc-protection controller holds the claim while it exists.
	must(t)(kube.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0"},
		Spec: corev1.PodSpec{NodeName: cluster.Nodes[0], Containers: []corev1.Container{{Name: "db", Image: "postgres"}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}},
	}, metav1.CreateOptions{}))
	waitFor(t, "claim data bound", func() bool {
		c, err := kube.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data", metav1.GetOptions{})
		return err == nil && c.Status.Phase == corev1.ClaimBound
	})

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	go cloud(cctx, t, kube, "shop")
	l := &log{t: t}
	rec, err := Kube{Client: kube, Namespaces: []string{"shop"}, Wait: time.Minute, Poll: 100 * time.Millisecond, Log: l}.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{KindIngress + " shop/web", KindPV + " " + pv, KindPVC + " shop/data", KindLoadBalancer + " shop/web"}
	if got := kinds(rec.Removed); !slices.Equal(got, want) || !rec.Clean() {
		t.Fatalf("receipt: removed %v, left %v; want removed %v", got, rec.Left, want)
	}
	for _, s := range []string{KindLoadBalancer + " shop/web (held by finalizer " + lbFinalizer, KindPV + " " + pv + " (held by finalizer kubernetes.io/pv-protection)"} {
		if !l.sawWaiting(s) {
			t.Errorf("no progress line naming %q: %q", s, l.waiting)
		}
	}
	if _, err := kube.CoreV1().Pods("shop").Get(ctx, "db-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod mounting the claim still there: %v", err)
	}
	for ns, name := range map[string]string{"shop": "internal", "neighbour": "keep"} {
		if _, err := kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("service %s/%s was not the sweep's to delete: %v", ns, name, err)
		}
	}
}

// TestSweepBoundedWait: what never finishes deleting, and a volume kept by
// its reclaim policy, come back as left with why, after the bounded wait.
func TestSweepBoundedWait(t *testing.T) {
	kube := cluster.Client
	namespace(t, kube, "stuck")
	lbService(t, kube, "stuck", "api", lbFinalizer)
	kept := claim(t, kube, "stuck", "archive", corev1.PersistentVolumeReclaimRetain)
	cctx, stop := context.WithCancel(context.Background())
	defer stop()
	go cloud(cctx, t, kube, "stuck", "api")
	start := time.Now()
	rec, err := Kube{Client: kube, Namespaces: []string{"stuck"}, Wait: 2 * time.Second, Poll: 100 * time.Millisecond, Log: &log{t: t}}.Sweep(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("sweep took %s with a 2s bound", d)
	}
	if got, want := kinds(rec.Removed), []string{KindPVC + " stuck/archive"}; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	if got, want := kinds(rec.Left), []string{KindPV + " " + kept, KindLoadBalancer + " stuck/api"}; !slices.Equal(got, want) {
		t.Fatalf("left %v, want %v", got, want)
	}
	for _, it := range rec.Left {
		if (it.Kind == KindPV && !strings.Contains(it.Why, "reclaim policy Retain")) ||
			(it.Kind == KindLoadBalancer && !strings.Contains(it.Why, "still deleting after 2s: (held by finalizer "+lbFinalizer)) {
			t.Errorf("why %s: %q", it.Name, it.Why)
		}
	}
	if !strings.Contains(rec.Text(), "LEFT 2") {
		t.Errorf("receipt text:\n%s", rec.Text())
	}
}

// TestSweepInterrupted: cancelling returns the context's error with what was removed so far.
func TestSweepInterrupted(t *testing.T) {
	kube := cluster.Client
	namespace(t, kube, "cancel")
	lbService(t, kube, "cancel", "api", lbFinalizer)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := Kube{Client: kube, Namespaces: []string{"cancel"}, Wait: time.Hour, Poll: 100 * time.Millisecond, Log: &log{t: t}}.Sweep(ctx)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err = %v, want the context's", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, cluster.Logs(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSweepRecreated: an object its controller recreates under the same
// name (k3s's helm-controller does so for Traefik's Service) counts as
// removed: the sweep waits for the object it deleted, not for the name.
func TestSweepRecreated(t *testing.T) {
	kube := cluster.Client
	ctx := context.Background()
	namespace(t, kube, "recreate")
	lbService(t, kube, "recreate", "traefik", lbFinalizer)
	done := make(chan struct{})
	go func() { // the controller: release, wait for the delete, create it again
		defer close(done)
		for i := 0; i < 300; i++ {
			s, err := kube.CoreV1().Services("recreate").Get(ctx, "traefik", metav1.GetOptions{})
			if err == nil && s.DeletionTimestamp != nil {
				kube.CoreV1().Services("recreate").Patch(ctx, "traefik", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			}
			if apierrors.IsNotFound(err) {
				// t.Fatal belongs to the test's goroutine: report and stop.
				if _, err := kube.CoreV1().Services("recreate").Create(ctx, newLBService("traefik", lbFinalizer), metav1.CreateOptions{}); err != nil {
					t.Errorf("recreate the load balancer Service: %v", err)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	rec, err := Kube{Client: kube, Namespaces: []string{"recreate"}, Wait: 5 * time.Second, Poll: 200 * time.Millisecond, Log: &log{t: t}}.Sweep(ctx)
	<-done
	if err != nil || !rec.Clean() || len(rec.Removed) != 1 {
		t.Fatalf("sweep: %+v %v", rec, err)
	}
}
