package rollout

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Autoscale is a HorizontalPodAutoscaler on the live slot (a zero Max: none):
// from Min to Max replicas, aiming at CPU percent of the pods' requests.
type Autoscale struct {
	Min, Max, CPU int
	// RPS, when set, is a second target: requests a second per pod, the
	// pods metric RPSMetric from the cluster's custom metrics API (an
	// adapter such as prometheus-adapter serves it; docs/rollouts.md). The
	// autoscaler follows whichever target asks for more replicas.
	RPS int
}

// RPSMetric is the per-pod request rate the autoscaler's RPS target reads:
// the rate of the app's shortener_http_requests_total, as a custom metrics
// adapter names it (the rule in docs/rollouts.md).
const RPSMetric = "shortener_http_requests_per_second"

// HPAName is the app's autoscaler, owned by liftoff like the Services: one,
// on whichever slot is live, so a parked or warm slot never scales up.
func (e *Client) HPAName() string { return e.Ref.App }

// ensureHPA makes the app's autoscaler target slot with a's bounds, or
// removes it when a is off.
func (e *Client) ensureHPA(ctx context.Context, slot string, a Autoscale) error {
	hpas := e.Kube.AutoscalingV2().HorizontalPodAutoscalers(e.Ref.Namespace)
	cur, err := hpas.Get(ctx, e.HPAName(), metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("read autoscaler %s: %w", e.HPAName(), err)
	}
	if err == nil && cur.Labels[LabelManagedBy] != "liftoff" {
		return fmt.Errorf("autoscaler %s/%s is not liftoff's: rename it, or set autoscale off", e.Ref.Namespace, e.HPAName())
	}
	if a.Max == 0 {
		if err != nil {
			return nil
		}
		return wrapf(hpas.Delete(ctx, e.HPAName(), metav1.DeleteOptions{}), "delete autoscaler %s", e.HPAName())
	}
	want := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: e.HPAName(), Labels: map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: e.Release(slot)},
			MinReplicas:    ptr.To(int32(a.Min)), MaxReplicas: int32(a.Max),
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(int32(a.CPU))}}}},
		},
	}
	if a.RPS > 0 {
		want.Spec.Metrics = append(want.Spec.Metrics, autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType, Pods: &autoscalingv2.PodsMetricSource{
			Metric: autoscalingv2.MetricIdentifier{Name: RPSMetric},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: resource.NewQuantity(int64(a.RPS), resource.DecimalSI)}}})
	}
	if err != nil {
		_, err = hpas.Create(ctx, want, metav1.CreateOptions{})
		return wrapf(err, "create autoscaler %s", e.HPAName())
	}
	cur.Spec = want.Spec
	_, err = hpas.Update(ctx, cur, metav1.UpdateOptions{})
	return wrapf(err, "update autoscaler %s", e.HPAName())
}

// retargetHPA points the app's autoscaler, if it has one, at slot: it
// follows the live slot across flips and rollbacks.
func (e *Client) retargetHPA(ctx context.Context, slot string) error {
	hpas := e.Kube.AutoscalingV2().HorizontalPodAutoscalers(e.Ref.Namespace)
	cur, err := hpas.Get(ctx, e.HPAName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read autoscaler %s: %w", e.HPAName(), err)
	}
	if cur.Labels[LabelManagedBy] != "liftoff" || cur.Spec.ScaleTargetRef.Name == e.Release(slot) {
		return nil
	}
	cur.Spec.ScaleTargetRef.Name = e.Release(slot)
	_, err = hpas.Update(ctx, cur, metav1.UpdateOptions{})
	return wrapf(err, "point autoscaler %s at %s", e.HPAName(), e.Release(slot))
}
