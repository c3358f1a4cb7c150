package rollout

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// removeApp uninstalls both releases and deletes liftoff's Services; the
// caller holds the deploy lock.
func (e *Client) removeApp(ctx context.Context) error {
	for _, slot := range []string{Blue, Green} {
		if info, err := e.releaseInfo(slot); err != nil {
			return err
		} else if info == nil {
			continue
		}
		un := action.NewUninstall(e.helm)
		un.Timeout = 2 * time.Minute
		if _, err := un.Run(e.Release(slot)); err != nil {
			return fmt.Errorf("helm uninstall %s: %w", e.Release(slot), err)
		}
		e.Log.Infof("uninstalled release %s", e.Release(slot))
	}
	for _, svc := range []string{e.StableService(), e.PreviewService()} {
		if err := e.Kube.CoreV1().Services(e.Ref.Namespace).Delete(ctx, svc, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete service %s: %w", svc, err)
		}
	}
	// The release history and every version of the app's secrets go with
	// the app (in a namespace liftoff keeps, nothing of the app stays).
	if err := e.Kube.CoreV1().ConfigMaps(e.Ref.Namespace).Delete(ctx, e.HistoryName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete configmap %s: %w", e.HistoryName(), err)
	}
	if err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{
		LabelSelector: LabelApp + "=" + e.Ref.App + "," + LabelComponent + "=" + componentSecrets}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the app's secrets: %w", err)
	}
	return nil
}

// Teardown removes the app: both releases, liftoff's Services and Secret,
// the deploy lock, and the namespace when liftoff created it. It waits
// (bounded by ctx) until the namespace is gone.
func (e *Client) Teardown(ctx context.Context) error {
	ns, err := e.Kube.CoreV1().Namespaces().Get(ctx, e.Ref.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	lctx, l, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer l.release()
	if err := e.removeApp(lctx); err != nil {
		return err
	}
	if ns.Labels[LabelManagedBy] != "liftoff" {
		e.Log.Infof("namespace %s was not created by liftoff: keeping it", e.Ref.Namespace)
		return nil
	}
	if owner, me := outputs.Owner(ns.Labels), outputs.Owner(e.Ref.NamespaceLabels); owner != "" && me != "" && owner != me {
		e.Log.Infof("namespace %s belongs to stack %s: keeping it", e.Ref.Namespace, owner)
		return nil
	}
	// The deploy lock is a Lease in the namespace and goes with it: it is
	// no longer renewed (its loss would stop the wait below), but never
	// given up, so no deploy starts in the namespace being deleted.
	l.stopRenewing()
	if err := e.Kube.CoreV1().Namespaces().Delete(ctx, e.Ref.Namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", e.Ref.Namespace, err)
	}
	for {
		_, err := e.Kube.CoreV1().Namespaces().Get(ctx, e.Ref.Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			e.Log.Infof("namespace %s deleted", e.Ref.Namespace)
			return nil
		}
		e.Log.Waiting("namespace " + e.Ref.Namespace + " to finish terminating")
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still terminating: %w", e.Ref.Namespace, ctx.Err())
		case <-time.After(max(e.Poll, 250*time.Millisecond)):
		}
	}
}
