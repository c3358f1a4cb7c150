package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

func (e *Client) selector(slot string) map[string]string {
	return map[string]string{LabelApp: e.Ref.App, LabelSlot: slot}
}

// ensureNamespace creates the app's namespace if it does not exist, and
// keeps the target's labels and annotations on it current.
func (e *Client) ensureNamespace(ctx context.Context) error {
	nss := e.Kube.CoreV1().Namespaces()
	ns, err := nss.Get(ctx, e.Ref.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		labels := map[string]string{LabelManagedBy: "liftoff"}
		for k, v := range e.Ref.NamespaceLabels {
			labels[k] = v
		}
		_, err = nss.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Ref.Namespace, Labels: labels,
			Annotations: e.Ref.NamespaceAnnotations}}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return wrapf(err, "create namespace %s", e.Ref.Namespace)
		}
		ns, err = nss.Get(ctx, e.Ref.Namespace, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", e.Ref.Namespace, err)
	}
	if owner, me := outputs.Owner(ns.Labels), outputs.Owner(e.Ref.NamespaceLabels); owner != "" && me != "" && owner != me {
		return failure.Newf(failure.Config, "give this stack a namespace of its own: liftoff config set namespace <name>",
			"namespace %s belongs to stack %s, not to %s: nothing was deployed", e.Ref.Namespace, owner, me)
	}
	stale := false
	for k, v := range e.Ref.NamespaceLabels {
		stale = stale || ns.Labels[k] != v
	}
	for k, v := range e.Ref.NamespaceAnnotations {
		stale = stale || ns.Annotations[k] != v
	}
	if !stale {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": e.Ref.NamespaceLabels, "annotations": e.Ref.NamespaceAnnotations}})
	if err != nil {
		return err
	}
	_, err = nss.Patch(ctx, e.Ref.Namespace, types.MergePatchType, patch, metav1.PatchOptions{})
	return wrapf(err, "label namespace %s", e.Ref.Namespace)
}

// ensureSecret writes the app's environment Secret when its content differs.
func (e *Client) ensureSecret(ctx context.Context, name string, data map[string]string) error {
	secrets := e.Kube.CoreV1().Secrets(e.Ref.Namespace)
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff"}},
		Type: corev1.SecretTypeOpaque, StringData: data}
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, want, metav1.CreateOptions{})
		return wrapf(err, "create secret %s", name)
	}
	if err != nil {
		return fmt.Errorf("read secret %s: %w", name, err)
	}
	same := len(cur.Data) == len(data)
	for k, v := range data {
		same = same && string(cur.Data[k]) == v
	}
	if same {
		return nil
	}
	cur.Data, cur.StringData = nil, data
	_, err = secrets.Update(ctx, cur, metav1.UpdateOptions{})
	return wrapf(err, "update secret %s", name)
}

// ensureService creates or re-points a liftoff-owned Service at slot; ann
// are annotations to set (a nil value removes one).
func (e *Client) ensureService(ctx context.Context, name, slot string, ann map[string]any) error {
	svcs := e.Kube.CoreV1().Services(e.Ref.Namespace)
	_, err := svcs.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		set := map[string]string{}
		for k, v := range ann {
			if s, ok := v.(string); ok {
				set[k] = s
			}
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff"}, Annotations: set},
			Spec:       corev1.ServiceSpec{Selector: e.selector(slot), Ports: []corev1.ServicePort{{Name: "http", Port: ServicePort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
		}
		_, err = svcs.Create(ctx, svc, metav1.CreateOptions{})
		return wrapf(err, "create service %s", name)
	}
	if err != nil {
		return fmt.Errorf("read service %s: %w", name, err)
	}
	// One merge patch: the selector and its bookkeeping change atomically.
	sel := map[string]any{LabelApp: e.Ref.App, LabelSlot: slot}
	if slot == "" { // a gradual shift: both slots' pods
		sel[LabelSlot] = nil
	}
	patch := map[string]any{"spec": map[string]any{"selector": sel}}
	if len(ann) > 0 {
		patch["metadata"] = map[string]any{"annotations": ann}
	}
	b, _ := json.Marshal(patch)
	_, err = svcs.Patch(ctx, name, types.MergePatchType, b, metav1.PatchOptions{})
	return wrapf(err, "point service %s at %s", name, slot)
}

// Address is where a liftoff Service answers: its load balancer when the
// cluster gave it one, otherwise its ClusterIP (reachable wherever the
// cluster's network is routed: inside it, or a machine that routes to it).
func (e *Client) Address(ctx context.Context, name string) (string, error) {
	svc, err := e.Kube.CoreV1().Services(e.Ref.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("read service %s: %w", name, err)
	}
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if in.Hostname != "" {
			return "http://" + in.Hostname, nil
		}
		if in.IP != "" {
			return "http://" + in.IP, nil
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		return "http://" + ip, nil
	}
	return "", nil
}

// serviceSlot returns the slot a Service selects, or "" if it does not
// exist. During a gradual shift the live Service selects both slots: the
// slot traffic moves from is the live one.
func (e *Client) serviceSlot(ctx context.Context, name string) (string, map[string]string, error) {
	svc, err := e.Kube.CoreV1().Services(e.Ref.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("read service %s: %w", name, err)
	}
	if slot := svc.Spec.Selector[LabelSlot]; slot != "" {
		return slot, svc.Annotations, nil
	}
	from, _, _ := strings.Cut(svc.Annotations[AnnShift], ">")
	return from, svc.Annotations, nil
}

// flip points live traffic at slot: one patch of the stable Service.
func (e *Client) flip(ctx context.Context, slot, previous string) error {
	ann := map[string]any{AnnPromotedAt: e.Now().UTC().Format(time.RFC3339), AnnShift: nil}
	if previous != "" {
		ann[AnnPrevious] = previous
	}
	if err := e.ensureService(ctx, e.StableService(), slot, ann); err != nil {
		return err
	}
	e.Log.Infof("traffic flipped: %s/%s now selects %s", e.Ref.Namespace, e.StableService(), slot)
	return nil
}

// scale sets a slot's replica count. A merge patch carries no
// resourceVersion, so it cannot lose a race with the Deployment controller.
func (e *Client) scale(ctx context.Context, slot string, replicas int32) error {
	b, _ := json.Marshal(map[string]any{"spec": map[string]any{"replicas": replicas}})
	_, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Patch(ctx, e.Release(slot), types.MergePatchType, b, metav1.PatchOptions{})
	return wrapf(err, "scale %s to %d", e.Release(slot), replicas)
}

// setScaleDownAt records (or, with a zero time, clears) when a slot is due to park.
func (e *Client) setScaleDownAt(ctx context.Context, slot string, at time.Time) error {
	v := any(nil)
	if !at.IsZero() {
		v = at.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnScaleDownAt: v}}})
	_, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Patch(ctx, e.Release(slot), types.MergePatchType, b, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return wrapf(err, "annotate %s", e.Release(slot))
}

// parkDue scales idle slots whose scale-down time has passed to zero.
func (e *Client) parkDue(ctx context.Context, live string) error {
	for _, slot := range []string{Blue, Green} {
		if slot == live {
			continue
		}
		d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		at, err := time.Parse(time.RFC3339, d.Annotations[AnnScaleDownAt])
		if err != nil || e.Now().Before(at) {
			continue
		}
		if ptr.Deref(d.Spec.Replicas, 0) > 0 {
			if err := e.scale(ctx, slot, 0); err != nil {
				return err
			}
			e.Log.Infof("scaled the idle slot %s to zero (due %s)", slot, at.Local().Format(time.TimeOnly))
		}
		if err := e.setScaleDownAt(ctx, slot, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// ServicePort is the port of the app's Services (to the pods' http port).
const ServicePort = 80

// NodePlatforms lists the os/arch pairs of the cluster's schedulable nodes, sorted.
func (e *Client) NodePlatforms(ctx context.Context) ([]string, error) {
	nodes, err := e.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range nodes.Items {
		os, arch := n.Status.NodeInfo.OperatingSystem, n.Status.NodeInfo.Architecture
		if os == "" || arch == "" || n.Spec.Unschedulable {
			continue
		}
		if p := os + "/" + arch; !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}
