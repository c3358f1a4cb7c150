package rollout

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// HealthError is why a slot never became ready, with the evidence.
type HealthError struct {
	Slot    string
	Pod     string
	Reason  string
	Message string
	Events  []string
	Logs    []string
}

func (h *HealthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "slot %s is not healthy: %s", h.Slot, h.Reason)
	if h.Pod != "" {
		fmt.Fprintf(&b, " (pod %s)", h.Pod)
	}
	if h.Message != "" {
		fmt.Fprintf(&b, ": %s", h.Message)
	}
	if len(h.Events) > 0 {
		b.WriteString("\n  events:")
		for _, e := range h.Events {
			b.WriteString("\n    " + e)
		}
	}
	if len(h.Logs) > 0 {
		b.WriteString("\n  last log lines:")
		for _, l := range h.Logs {
			b.WriteString("\n    " + l)
		}
	}
	return b.String()
}

// fatalWaiting are container states that do not heal by waiting.
var fatalWaiting = map[string]bool{
	"CrashLoopBackOff": true, "ImagePullBackOff": true, "ErrImagePull": true, "InvalidImageName": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true,
}

// waitReady waits until the slot's Deployment has rolled out want ready
// replicas, judged on observedGeneration and replica counts (not Helm's wait),
// and fails fast when a pod of the new revision is in a state that does not heal.
func (e *Client) waitReady(ctx context.Context, slot string, want int32) error {
	deadline := e.Now().Add(e.ReadyTimeout)
	name := e.Release(slot)
	var unschedulableSince time.Time
	for {
		d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read deployment %s: %w", name, err)
		}
		st := d.Status
		if st.ObservedGeneration >= d.Generation && ptr.Deref(d.Spec.Replicas, 1) == want && st.UpdatedReplicas == want &&
			st.ReadyReplicas >= want && st.AvailableReplicas >= want && st.Replicas == want {
			return nil
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
				return e.diagnose(ctx, slot, "", "ProgressDeadlineExceeded", c.Message)
			}
			if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
				return e.diagnose(ctx, slot, "", "ReplicaFailure: "+c.Reason, c.Message)
			}
		}
		pods, err := e.currentPods(ctx, d)
		if err != nil {
			return err
		}
		unschedulable := ""
		for _, p := range pods {
			if reason, msg, pod := podProblem(p); reason != "" {
				return e.diagnose(ctx, slot, pod, reason, msg)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
					unschedulable = p.Name
					if e.scalingUp(ctx, p.Name) {
						unschedulable = ""
					}
				}
			}
		}
		if unschedulable == "" {
			unschedulableSince = time.Time{}
		} else if unschedulableSince.IsZero() {
			unschedulableSince = e.Now()
		} else if e.Now().Sub(unschedulableSince) >= e.UnschedulableWait {
			return e.diagnose(ctx, slot, unschedulable, "Unschedulable", "no node can take the pod, and no autoscaler is adding one")
		}
		e.Log.Waiting(fmt.Sprintf("%s: %d/%d ready (updated %d)", slot, st.ReadyReplicas, want, st.UpdatedReplicas))
		if !e.Now().Before(deadline) {
			return e.diagnose(ctx, slot, "", "Timeout", fmt.Sprintf("%d/%d replicas ready after %s", st.ReadyReplicas, want, e.ReadyTimeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(e.Poll):
		}
	}
}

// currentPods are the pods of the Deployment's newest ReplicaSet.
func (e *Client) currentPods(ctx context.Context, d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	rss, err := e.Kube.AppsV1().ReplicaSets(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, err
	}
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	hash := ""
	for _, rs := range rss.Items {
		if rs.Annotations["deployment.kubernetes.io/revision"] == rev && metav1.IsControlledBy(&rs, d) {
			hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	if hash == "" {
		return nil, nil // the controller has not created it yet
	}
	req, _ := labels.NewRequirement(appsv1.DefaultDeploymentUniqueLabelKey, "=", []string{hash})
	pods, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.Add(*req).String()})
	if err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// podProblem finds a state that will not heal by waiting.
func podProblem(p corev1.Pod) (reason, message, pod string) {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		// An OOM kill is the cause of the crash loop that follows it: name it first.
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && t.Reason == "OOMKilled" {
				return "OOMKilled", fmt.Sprintf("container %s ran out of memory (exit code %d); raise resources.limits.memory", cs.Name, t.ExitCode), p.Name
			}
		}
		if w := cs.State.Waiting; w != nil && fatalWaiting[w.Reason] {
			return w.Reason, w.Message, p.Name
		}
	}
	return "", "", ""
}

// scalingUp reports whether a cluster autoscaler says it is adding a node for the pod.
func (e *Client) scalingUp(ctx context.Context, pod string) bool {
	evs, err := e.Kube.CoreV1().Events(e.Ref.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return false
	}
	for _, ev := range evs.Items {
		if ev.Reason == "TriggeredScaleUp" {
			return true
		}
	}
	return false
}

// diagnose gathers the pod's events and last log lines into a health error.
func (e *Client) diagnose(ctx context.Context, slot, pod, reason, message string) error {
	h := &HealthError{Slot: slot, Pod: pod, Reason: reason, Message: message}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if pod == "" {
		pods, _ := e.Kube.CoreV1().Pods(e.Ref.Namespace).List(dctx, metav1.ListOptions{LabelSelector: LabelApp + "=" + e.Ref.App + "," + LabelSlot + "=" + slot})
		if pods != nil && len(pods.Items) > 0 {
			pod = pods.Items[0].Name
			h.Pod = pod
		}
	}
	if pod != "" {
		if evs, err := e.Kube.CoreV1().Events(e.Ref.Namespace).List(dctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod}); err == nil {
			sort.Slice(evs.Items, func(i, j int) bool { return eventTime(evs.Items[i]).Before(eventTime(evs.Items[j])) })
			for _, ev := range evs.Items[max(0, len(evs.Items)-10):] {
				h.Events = append(h.Events, fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, strings.TrimSpace(ev.Message)))
			}
		}
		h.Logs = e.lastLogs(dctx, pod, reason == "CrashLoopBackOff" || reason == "OOMKilled")
	}
	return failure.New(failure.Health, h, fmt.Sprintf("fix the cause above and deploy again; the live slot kept serving (inspect: kubectl -n %s describe pod %s)", e.Ref.Namespace, pod))
}

func eventTime(ev corev1.Event) time.Time {
	if !ev.LastTimestamp.IsZero() {
		return ev.LastTimestamp.Time
	}
	return ev.EventTime.Time
}

func (e *Client) lastLogs(ctx context.Context, pod string, previous bool) []string {
	req := e.Kube.CoreV1().Pods(e.Ref.Namespace).GetLogs(pod, &corev1.PodLogOptions{TailLines: ptr.To[int64](20), Previous: previous})
	rc, err := req.Stream(ctx)
	if err != nil && previous { // the container has not restarted yet: its current run is the one that ended
		rc, err = e.Kube.CoreV1().Pods(e.Ref.Namespace).GetLogs(pod, &corev1.PodLogOptions{TailLines: ptr.To[int64](20)}).Stream(ctx)
	}
	if err != nil {
		return []string{"(logs unavailable: " + firstLine(err.Error()) + ")"}
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return []string{"(no log output)"}
	}
	return lines
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
