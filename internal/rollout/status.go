package rollout

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/lock"
)

// SlotStatus is one slot as `liftoff status` shows it.
type SlotStatus struct {
	Slot        string    `json:"slot"`
	Release     string    `json:"release"`
	Revision    int       `json:"revision,omitempty"`
	HelmStatus  string    `json:"helm_status,omitempty"`
	Image       string    `json:"image,omitempty"`
	Desired     int32     `json:"desired"`
	Ready       int32     `json:"ready"`
	Live        bool      `json:"live"`
	Preview     bool      `json:"preview"`
	ScaleDownAt time.Time `json:"scale_down_at,omitzero"`
	// Secrets is the version of the app's secrets the slot runs with.
	Secrets string `json:"secrets_version,omitempty"`
}

// Status describes both slots, which one is live, and the deploy lock.
type Status struct {
	Namespace string       `json:"namespace"`
	App       string       `json:"app"`
	Live      string       `json:"live"`
	Slots     []SlotStatus `json:"slots"`
	Lock      *lock.Holder `json:"lock,omitempty"`
	// Recent are the last three records of the release history, newest first.
	Recent []Record `json:"recent,omitempty"`
}

// Status reads the app's state; it also parks idle slots whose time has come.
func (e *Client) Status(ctx context.Context) (*Status, error) {
	live, _, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	preview, _, err := e.serviceSlot(ctx, e.PreviewService())
	if err != nil {
		return nil, err
	}
	if h, _ := e.Holder(ctx); h == nil && live != "" {
		if err := e.parkDue(ctx, live); err != nil {
			e.Log.Warnf("park idle slot: %v", err)
		}
	}
	st := &Status{Namespace: e.Ref.Namespace, App: e.Ref.App, Live: live}
	for _, slot := range []string{Blue, Green} {
		s := SlotStatus{Slot: slot, Release: e.Release(slot), Live: slot == live, Preview: slot == preview && slot != live}
		if info, err := e.releaseInfo(slot); err != nil {
			return nil, err
		} else if info != nil {
			s.Revision, s.HelmStatus = info.Revision, info.Status
		}
		d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
		if err == nil {
			s.Desired, s.Ready = ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas
			if len(d.Spec.Template.Spec.Containers) > 0 {
				s.Image = d.Spec.Template.Spec.Containers[0].Image
			}
			s.Secrets = d.Spec.Template.Annotations[AnnSecretsVersion]
			if at, err := time.Parse(time.RFC3339, d.Annotations[AnnScaleDownAt]); err == nil {
				s.ScaleDownAt = at
			}
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
		st.Slots = append(st.Slots, s)
	}
	if st.Recent, err = e.History(ctx, 3); err != nil {
		return nil, err
	}
	st.Lock, err = e.Holder(ctx)
	return st, err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
