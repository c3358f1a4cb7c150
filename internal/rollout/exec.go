package rollout

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/kexec"
)

// ExecOptions say what `liftoff exec` runs, and where.
type ExecOptions struct {
	Slot    string // live (default), preview, blue or green
	Pod     string // a pod of the app; default: a ready pod of the slot
	Command []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	TTY     bool
	// Size, with TTY, reports the local terminal's size as it changes.
	Size remotecommand.TerminalSizeQueue
}

// ExecPod picks the pod a command runs in: the one named (it must be the
// app's), or a ready pod of the slot.
func (e *Client) ExecPod(ctx context.Context, o ExecOptions) (*corev1.Pod, error) {
	if o.Pod != "" {
		p, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).Get(ctx, o.Pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, failure.Newf(failure.NotFound, "list the app's pods with liftoff status, or drop --pod", "pod %s not found in namespace %s", o.Pod, e.Ref.Namespace)
		}
		if err != nil {
			return nil, err
		}
		if p.Labels[LabelApp] != e.Ref.App {
			return nil, failure.Newf(failure.Config, "pass a pod of "+e.Ref.App, "pod %s is not one of %s's", o.Pod, e.Ref.App)
		}
		return p, nil
	}
	if err := ValidSlotSelector(orLive(o.Slot), false); err != nil {
		return nil, err
	}
	slots, err := e.resolveSlots(ctx, o.Slot)
	if err != nil {
		return nil, err
	}
	pods, err := e.slotPods(ctx, slots)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if pods[i].DeletionTimestamp == nil && podReady(&pods[i]) {
			return &pods[i], nil
		}
	}
	return nil, failure.Newf(failure.Health, "check the slot with liftoff status", "no ready pod in slot %s", slots[0])
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Exec runs a command in a pod of the app, streaming its stdio, and returns
// the command's exit code. An error means the command could not be run.
func (e *Client) Exec(ctx context.Context, o ExecOptions) (int, error) {
	if len(o.Command) == 0 {
		return 0, failure.Newf(failure.Config, "liftoff exec -- CMD [ARGS...], e.g. liftoff exec -- shortener migrate", "no command to run")
	}
	p, err := e.ExecPod(ctx, o)
	if err != nil {
		return 0, err
	}
	return kexec.Run(ctx, e.Kube, e.Rest, kexec.Options{Namespace: p.Namespace, Pod: p.Name, Container: p.Spec.Containers[0].Name,
		Command: o.Command, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, TTY: o.TTY, Size: o.Size})
}
