package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
)

// lease is a held deploy lock.
type lease struct {
	e *Client
	// parent is the deploy's context: the lease is deleted under it even
	// after it was canceled.
	parent context.Context
	name   string
	uid    string
	cancel context.CancelCauseFunc
	done   chan struct{}
}

var errLostLock = errors.New("the deploy lock was taken by another run")

// acquire takes the per-app deploy lock (a Lease) and keeps renewing it. If
// the lease is lost, the returned context is cancelled, stopping the deploy.
func (e *Client) acquire(ctx context.Context) (context.Context, *lease, error) {
	leases := e.Kube.CoordinationV1().Leases(e.Ref.Namespace)
	deadline := e.Now().Add(e.LockWait)
	holderJSON, _ := json.Marshal(e.Self)
	waitedOn := ""
	for {
		now := metav1.NewMicroTime(e.Now())
		want := &coordv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: e.leaseName(), Labels: map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff"},
				Annotations: map[string]string{AnnHolder: string(holderJSON)}},
			Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To(e.Self.String()), LeaseDurationSeconds: ptr.To(int32(e.LeaseDuration / time.Second)),
				AcquireTime: &now, RenewTime: &now},
		}
		cur, err := leases.Get(ctx, want.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			created, err := leases.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("create deploy lock: %w", err)
			}
			return e.hold(ctx, created)
		case err != nil:
			return nil, nil, fmt.Errorf("read deploy lock: %w", err)
		}
		holder := holderOf(cur)
		expired := cur.Spec.RenewTime == nil || cur.Spec.LeaseDurationSeconds == nil ||
			e.Now().After(cur.Spec.RenewTime.Add(time.Duration(*cur.Spec.LeaseDurationSeconds)*time.Second))
		if expired || !lock.Alive(holder) {
			want.ResourceVersion = cur.ResourceVersion
			taken, err := leases.Update(ctx, want, metav1.UpdateOptions{})
			if apierrors.IsConflict(err) {
				continue
			}
			if err != nil {
				return nil, nil, fmt.Errorf("take over deploy lock: %w", err)
			}
			why := "expired"
			if !expired {
				why = "its process is gone"
			}
			e.Log.Warnf("took over the deploy lock of %s: %s", holder, why)
			return e.hold(ctx, taken)
		}
		if !e.Now().Before(deadline) {
			return nil, nil, failure.New(failure.Locked, fmt.Errorf("another deploy of %s in %s is running: held by %s", e.Ref.App, e.Ref.Namespace, holder),
				"wait for it, or queue with --lock-wait 5m; a dead holder's lock expires "+e.LeaseDuration.String()+" after its last renewal")
		}
		if waitedOn != holder.String() {
			waitedOn = holder.String()
			e.Log.Infof("waiting for the deploy lock held by %s", holder)
		}
		e.Log.Waiting("deploy lock held by " + holder.String())
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(max(e.Poll, 100*time.Millisecond)):
		}
	}
}

func holderOf(l *coordv1.Lease) lock.Holder {
	var h lock.Holder
	if err := json.Unmarshal([]byte(l.Annotations[AnnHolder]), &h); err != nil || h.PID == 0 {
		h = lock.Holder{User: "unknown", Host: ptr.Deref(l.Spec.HolderIdentity, "unknown")}
	}
	return h
}

func (e *Client) hold(parent context.Context, l *coordv1.Lease) (context.Context, *lease, error) {
	ctx, cancel := context.WithCancelCause(parent)
	h := &lease{e: e, parent: parent, name: l.Name, uid: string(l.UID), cancel: cancel, done: make(chan struct{})}
	go h.renew(ctx)
	return ctx, h, nil
}

// renew refreshes the lease every third of its duration; losing it stops the deploy.
func (h *lease) renew(ctx context.Context) {
	defer close(h.done)
	leases := h.e.Kube.CoordinationV1().Leases(h.e.Ref.Namespace)
	t := time.NewTicker(h.e.LeaseDuration / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur, err := leases.Get(ctx, h.name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				h.cancel(errLostLock)
				return
			}
			continue // transient: try again on the next tick
		}
		if string(cur.UID) != h.uid || holderOf(cur).String() != h.e.Self.String() {
			h.cancel(errLostLock)
			return
		}
		cur.Spec.RenewTime = ptr.To(metav1.NewMicroTime(h.e.Now()))
		if _, err := leases.Update(ctx, cur, metav1.UpdateOptions{}); apierrors.IsConflict(err) {
			h.cancel(errLostLock)
			return
		}
	}
}

// stopRenewing ends the renewals (and with them the lease's context) but
// keeps the lease: it expires on its own, or goes with its namespace.
func (h *lease) stopRenewing() {
	h.cancel(nil)
	<-h.done
}

// release stops renewing and deletes the lease if it is still ours.
func (h *lease) release() {
	h.cancel(nil)
	<-h.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(h.parent), 10*time.Second)
	defer cancel()
	leases := h.e.Kube.CoordinationV1().Leases(h.e.Ref.Namespace)
	cur, err := leases.Get(ctx, h.name, metav1.GetOptions{})
	if err != nil || string(cur.UID) != h.uid || holderOf(cur).String() != h.e.Self.String() {
		return
	}
	leases.Delete(ctx, h.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}})
}

// Holder returns who holds the deploy lock now, if anyone.
func (e *Client) Holder(ctx context.Context) (*lock.Holder, error) {
	l, err := e.Kube.CoordinationV1().Leases(e.Ref.Namespace).Get(ctx, e.leaseName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h := holderOf(l)
	return &h, nil
}

// Locked runs fn under the app's deploy lock, so that nothing deploys,
// promotes, rolls back or migrates meanwhile; fn's context ends when the
// lock is lost.
func (e *Client) Locked(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer l.release()
	return fn(ctx)
}
