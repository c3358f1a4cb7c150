package teardown

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Kinds of Kubernetes objects the sweep removes.
const (
	KindLoadBalancer = "Service/LoadBalancer"
	KindIngress      = "Ingress"
	KindPVC          = "PersistentVolumeClaim"
	KindPV           = "PersistentVolume"
)

// Kube sweeps a cluster before the engine destroys the stack. Pulumi does
// not know these objects (controllers and StatefulSets create them), yet each
// holds a cloud resource: a load balancer, a disk. Deleting them first, and
// waiting until their finalizers are released, is what makes the cloud
// resources go before the cluster that would delete them does.
type Kube struct {
	Client kubernetes.Interface
	// Namespaces to sweep; none sweeps every namespace (a cluster the stack owns).
	Namespaces []string
	// Wait bounds the wait for deletions to finish (default 10m); what is
	// still there then is reported as left, not as an error.
	Wait time.Duration
	// Poll is the interval between checks (default 2s).
	Poll time.Duration
	Log  Reporter
}

// object is one object the sweep deleted and waits for.
type object struct {
	kind, ns, name string
	uid            types.UID
	get            func(ctx context.Context) (metav1.Object, error)
}

func (o object) item() Item {
	if o.ns == "" {
		return Item{Kind: o.kind, Name: o.name}
	}
	return Item{Kind: o.kind, Name: o.ns + "/" + o.name}
}

// Sweep deletes every Service of type LoadBalancer, Ingress and
// PersistentVolumeClaim in the namespaces, and the scheduled pods that
// mount those claims (a claim in use is never released), then waits until
// they and the PersistentVolumes bound to the claims are gone. A volume whose
// reclaim policy keeps it is reported as left. ctx cancelled is an
// interruption and returns its error; the bounded wait running out is not.
func (k Kube) Sweep(ctx context.Context) (*Receipt, error) {
	wait, poll := k.Wait, k.Poll
	if wait == 0 {
		wait = 10 * time.Minute
	}
	if poll == 0 {
		poll = 2 * time.Second
	}
	namespaces := k.Namespaces
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	rec := &Receipt{}
	var pending []object
	claims := map[string]map[string]bool{} // namespace -> claim names being deleted
	for _, ns := range namespaces {
		objs, err := k.deleteIn(ctx, ns, rec, claims)
		if err != nil {
			return rec, err
		}
		pending = append(pending, objs...)
	}
	if len(pending) == 0 {
		return rec, nil
	}
	k.Log.Infof("deleting %d object(s) that hold cloud resources: %s", len(pending), names(pending, 5))
	deadline := time.Now().Add(wait)
	for {
		if err := k.evictClaimUsers(ctx, claims); err != nil {
			return rec, err
		}
		var still []object
		var holds []string
		for _, o := range pending {
			m, err := o.get(ctx)
			// Gone, or gone and recreated by its controller (a new object).
			if apierrors.IsNotFound(err) || err == nil && m.GetUID() != o.uid {
				rec.Removed = append(rec.Removed, o.item())
				continue
			}
			if err != nil && ctx.Err() != nil {
				return rec, ctx.Err()
			}
			still = append(still, o)
			holds = append(holds, holdOf(m, err))
		}
		pending = still
		if len(pending) == 0 {
			return rec, nil
		}
		if time.Now().After(deadline) {
			for i, o := range pending {
				it := o.item()
				it.Why = fmt.Sprintf("still deleting after %s: %s", wait, holds[i])
				rec.Left = append(rec.Left, it)
			}
			return rec, nil
		}
		var lines []string
		for i, o := range pending {
			it := o.item()
			lines = append(lines, it.Kind+" "+it.Name+" "+holds[i])
		}
		k.Log.Waiting(fmt.Sprintf("%d object(s) to finish deleting: %s", len(pending), strings.Join(first(lines, 3), "; ")))
		select {
		case <-ctx.Done():
			return rec, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// deleteIn deletes the sweep's objects in one namespace ("" for all) and
// returns them to wait for.
func (k Kube) deleteIn(ctx context.Context, ns string, rec *Receipt, claims map[string]map[string]bool) ([]object, error) {
	core, net := k.Client.CoreV1(), k.Client.NetworkingV1()
	var out []object
	svcs, err := core.Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		s := s
		o := object{KindLoadBalancer, s.Namespace, s.Name, s.UID, func(ctx context.Context) (metav1.Object, error) {
			return core.Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{})
		}}
		if err := core.Services(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete service %s/%s: %w", s.Namespace, s.Name, err)
		}
		out = append(out, o)
	}
	ings, err := net.Ingresses(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list ingresses: %w", err)
	}
	for _, i := range ings.Items {
		i := i
		if err := net.Ingresses(i.Namespace).Delete(ctx, i.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete ingress %s/%s: %w", i.Namespace, i.Name, err)
		}
		out = append(out, object{KindIngress, i.Namespace, i.Name, i.UID, func(ctx context.Context) (metav1.Object, error) {
			return net.Ingresses(i.Namespace).Get(ctx, i.Name, metav1.GetOptions{})
		}})
	}
	pvcs, err := core.PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list persistent volume claims: %w", err)
	}
	for _, c := range pvcs.Items {
		c := c
		if c.Spec.VolumeName != "" {
			pv, err := core.PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return nil, fmt.Errorf("read volume %s of claim %s/%s: %w", c.Spec.VolumeName, c.Namespace, c.Name, err)
			case pv.Spec.PersistentVolumeReclaimPolicy == corev1.PersistentVolumeReclaimDelete:
				out = append(out, object{KindPV, "", pv.Name, pv.UID, func(ctx context.Context) (metav1.Object, error) {
					return core.PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
				}})
			default:
				rec.Left = append(rec.Left, Item{Kind: KindPV, Name: pv.Name, Why: fmt.Sprintf("reclaim policy %s keeps the volume of claim %s/%s: delete it yourself when its data is no longer needed",
					pv.Spec.PersistentVolumeReclaimPolicy, c.Namespace, c.Name)})
			}
		}
		if err := core.PersistentVolumeClaims(c.Namespace).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete claim %s/%s: %w", c.Namespace, c.Name, err)
		}
		if claims[c.Namespace] == nil {
			claims[c.Namespace] = map[string]bool{}
		}
		claims[c.Namespace][c.Name] = true
		out = append(out, object{KindPVC, c.Namespace, c.Name, c.UID, func(ctx context.Context) (metav1.Object, error) {
			return core.PersistentVolumeClaims(c.Namespace).Get(ctx, c.Name, metav1.GetOptions{})
		}})
	}
	return out, nil
}

// evictClaimUsers deletes the scheduled pods that mount a claim being
// deleted: their StatefulSet may recreate them, but a new pod cannot use a
// terminating claim, so the claim is released.
func (k Kube) evictClaimUsers(ctx context.Context, claims map[string]map[string]bool) error {
	for ns, names := range claims {
		pods, err := k.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list pods in %s: %w", ns, err)
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || !mounts(&p, names) {
				continue
			}
			// Its data goes with the claim: a graceful shutdown (a database
			// waiting 30 s for its clients) would only hold the teardown up.
			if err := k.Client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](1)}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete pod %s/%s using a claim being deleted: %w", ns, p.Name, err)
			}
			k.Log.Infof("deleted pod %s/%s so its volume claim can go", ns, p.Name)
		}
	}
	return nil
}

func mounts(p *corev1.Pod, claims map[string]bool) bool {
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && claims[v.PersistentVolumeClaim.ClaimName] {
			return true
		}
	}
	return false
}

// holdOf says what keeps an object that should be gone.
func holdOf(m metav1.Object, err error) string {
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if f := m.GetFinalizers(); len(f) > 0 {
		s := append([]string(nil), f...)
		sort.Strings(s)
		return "(held by finalizer " + strings.Join(s, ", ") + ")"
	}
	return "(terminating)"
}

func names(objs []object, n int) string {
	var s []string
	for _, o := range objs {
		it := o.item()
		s = append(s, it.Kind+" "+it.Name)
	}
	return strings.Join(first(s, n), ", ")
}

func first(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
}
