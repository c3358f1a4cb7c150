package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"helm.sh/helm/v3/pkg/action"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// Image is a parsed image reference.
type Image struct {
	Ref        string
	Repository string
	Digest     string
	Tag        string
}

// ParseImage reads repo@sha256:..., or repo:tag (allowed, but discouraged:
// a tag can move under a running slot).
func ParseImage(ref string) (Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Image{}, failure.Newf(failure.Config, "pass --image repo@sha256:... (liftoff build prints it)", "image %q: %v", ref, err)
	}
	img := Image{Ref: ref, Repository: r.Context().Name()}
	switch v := r.(type) {
	case name.Digest:
		img.Digest = v.DigestStr()
	case name.Tag:
		img.Tag = v.TagStr()
	}
	return img, nil
}

// DeployOptions say what to deploy.
type DeployOptions struct {
	Image    string
	Replicas int
	// SecretName is the Secret with DATABASE_URL and CACHE_URL (default <app>-env).
	SecretName string
	// SecretData, when set, is written to that Secret first (for targets whose
	// program does not manage it).
	SecretData       map[string]string
	OTLPEndpoint     string
	ImagePullSecrets []string
	PodLabels        map[string]string
	// Values are extra chart values.
	Values map[string]any
	// NoPromote stops before the flip, leaving the new slot on the preview Service.
	NoPromote bool
	// Detach returns after the flip: the old slot is parked by the next
	// liftoff command on this app once its scale-down delay has passed.
	Detach bool
	// AppSecrets are the app's own environment variables (liftoff secrets),
	// written as an immutable Secret the new slot reads through envFrom.
	AppSecrets map[string]string
	// ReuseLive deploys the image the live slot runs (a secrets change: no
	// rebuild); Image is then ignored.
	ReuseLive bool
	// Action names the deploy in the release history (default deploy).
	Action string
	// Force deploys to the idle slot even when the live slot already runs
	// this image with these values and secrets.
	Force bool
	// Locked runs once the deploy lock is held, before anything changes in
	// the cluster; it may change the options (a secrets change re-reads the
	// stored values under the lock, applies its change and stores them).
	Locked func(ctx context.Context, o *DeployOptions) error
}

func (o DeployOptions) secretName(app string) string {
	if o.SecretName != "" {
		return o.SecretName
	}
	return outputs.EnvSecret(app)
}

// Result is what a deploy, promote or rollback did.
type Result struct {
	Live     string `json:"live"`
	Previous string `json:"previous,omitempty"`
	Slot     string `json:"slot"`
	Revision int    `json:"revision,omitempty"`
	Image    string `json:"image,omitempty"`
	Promoted bool   `json:"promoted"`
	// AlreadyLive: the live slot already ran this; nothing was deployed.
	AlreadyLive bool   `json:"already_live,omitempty"`
	Service     string `json:"service"`
	Preview     string `json:"preview_service"`
	// Address is where the live Service answers (see Engine.Address).
	Address     string        `json:"address,omitempty"`
	ScaleDownAt time.Time     `json:"scale_down_at,omitzero"`
	Flip        time.Duration `json:"-"`
	FlipMillis  int64         `json:"flip_ms"`
	ToFlip      time.Duration `json:"-"`
	ToFlipMS    int64         `json:"to_flip_ms"`
}

// Deploy rolls an image out to the idle slot and, once it is healthy, moves
// traffic to it.
func (e *Client) Deploy(ctx context.Context, o DeployOptions) (res *Result, err error) {
	start := e.Now()
	var img Image
	if o.ReuseLive {
		// Checked against a placeholder now; the live slot's image once locked.
		img = Image{Repository: "liftoff.invalid/live", Digest: "sha256:" + strings.Repeat("0", 64)}
	} else if img, err = ParseImage(o.Image); err != nil {
		return nil, err
	}
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	if o.Action == "" {
		o.Action = ActionDeploy
	}
	// Validate the values before taking any lock or changing anything.
	if _, err := e.values(Blue, img, o, ""); err != nil {
		return nil, err
	}
	if err := e.ensureNamespace(ctx); err != nil {
		return nil, err
	}
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: o.Action}
	defer func() { e.record(ctx, rec, start, res, err) }()
	if err := e.recoverReleases(ctx); err != nil {
		return nil, err
	}
	live, _, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	if o.ReuseLive {
		if img, err = e.liveImage(ctx, live); err != nil {
			return nil, err
		}
	}
	if o.Locked != nil {
		if err := o.Locked(ctx, &o); err != nil {
			return nil, err
		}
	}
	if err := e.parkDue(ctx, live); err != nil {
		return nil, err
	}
	target := Blue
	if live != "" {
		target = Other(live)
	}
	res = &Result{Live: live, Previous: live, Slot: target, Image: img.Ref, Service: e.StableService(), Preview: e.PreviewService()}
	if o.SecretData != nil {
		if err := e.ensureSecret(ctx, o.secretName(e.Ref.App), o.SecretData); err != nil {
			return nil, err
		}
	}
	version, err := e.ensureAppSecrets(ctx, o.AppSecrets)
	if err != nil {
		return nil, err
	}
	rec.Secrets = version
	vals, err := e.values(target, img, o, version)
	if err != nil {
		return nil, err
	}
	// The stack's Secret (DATABASE_URL, CACHE_URL) is part of what a slot
	// runs: when the stack changes it, the app is redeployed.
	envHash, err := e.secretHash(ctx, o.secretName(e.Ref.App))
	if err != nil {
		return nil, err
	}
	spec := specHash(vals, envHash)
	if live != "" && !o.Force && e.runs(ctx, live, spec) {
		e.Log.Infof("slot %s already runs %s with these values and secrets: already live, traffic left alone (--force-deploy redeploys)", live, img.Ref)
		res.Slot, res.AlreadyLive = live, true
		if info, _ := e.releaseInfo(live); info != nil {
			res.Revision = info.Revision
		}
		if addr, err := e.Address(ctx, e.StableService()); err == nil {
			res.Address = addr
		}
		res.ToFlipMS = e.Now().Sub(start).Milliseconds()
		return res, nil
	}
	vals["podAnnotations"].(map[string]any)[AnnSpec] = spec
	if err := e.ensureService(ctx, e.PreviewService(), target, nil); err != nil {
		return nil, err
	}
	e.Log.Infof("deploying %s to slot %s (live: %s)", img.Ref, target, orNone(live))
	rel, err := e.apply(ctx, target, vals)
	if err != nil {
		return nil, err
	}
	res.Revision = rel.Version
	if err := e.setScaleDownAt(ctx, target, time.Time{}); err != nil {
		return nil, err
	}
	if err := e.waitReady(ctx, target, int32(o.Replicas)); err != nil {
		return nil, e.dispose(ctx, target, err)
	}
	if err := e.smoke(ctx); err != nil {
		return nil, e.dispose(ctx, target, err)
	}
	if o.NoPromote {
		e.Log.Infof("slot %s is ready on %s/%s; promote with liftoff promote", target, e.Ref.Namespace, e.PreviewService())
		return res, nil
	}
	if err := ctx.Err(); err != nil { // interrupted: never flip half-way through
		return nil, err
	}
	if err := e.promote(ctx, target, live, o.Detach, res); err != nil {
		return nil, err
	}
	res.ToFlip = e.Now().Sub(start)
	res.ToFlipMS = res.ToFlip.Milliseconds()
	if err := e.pruneAppSecrets(ctx); err != nil {
		e.Log.Warnf("could not delete unused versions of the app's secrets: %v", err)
	}
	return res, e.waitAndPark(ctx, target, live, o.Detach)
}

// AnnSpec, on a slot's pod template, is a hash of everything deployed to it
// but the slot: image, values, secrets version.
const AnnSpec = "liftoff.dev/spec"

func specHash(vals map[string]any, envHash string) string {
	v := map[string]any{"envSecret": envHash}
	for k, x := range vals {
		if k != "slot" {
			v["values."+k] = x
		}
	}
	b, _ := json.Marshal(v) // map keys are sorted: the hash is stable
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// secretHash is a hash of a Secret's data ("" when it does not exist).
func (e *Client) secretHash(ctx context.Context, name string) (string, error) {
	sec, err := e.Kube.CoreV1().Secrets(e.Ref.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", name, err)
	}
	b, _ := json.Marshal(sec.Data)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// runs says whether a slot is live-ready and runs exactly spec.
func (e *Client) runs(ctx context.Context, slot, spec string) bool {
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
	if err != nil || d.Spec.Template.Annotations[AnnSpec] != spec {
		return false
	}
	return e.checkReady(ctx, slot) == nil
}

// liveImage is the image the live slot runs, by digest.
func (e *Client) liveImage(ctx context.Context, live string) (Image, error) {
	if live == "" {
		return Image{}, failure.Newf(failure.NotFound, "deploy the app first: liftoff up (or liftoff deploy)", "%s has no live slot in %s", e.Ref.App, e.Ref.Namespace)
	}
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(live), metav1.GetOptions{})
	if err != nil {
		return Image{}, fmt.Errorf("live slot %s: %w", live, err)
	}
	if len(d.Spec.Template.Spec.Containers) == 0 {
		return Image{}, fmt.Errorf("live slot %s has no container", live)
	}
	return ParseImage(d.Spec.Template.Spec.Containers[0].Image)
}

// dispose parks a slot that failed its checks; the live slot never saw traffic move.
func (e *Client) dispose(ctx context.Context, slot string, cause error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.scale(cctx, slot, 0); err != nil {
		e.Log.Warnf("could not park the failed slot %s: %v", slot, err)
	}
	return cause
}

// promote flips traffic to target and schedules the old slot's scale-down.
func (e *Client) promote(ctx context.Context, target, live string, detach bool, res *Result) error {
	t0 := e.Now()
	if err := e.flip(ctx, target, live); err != nil {
		return err
	}
	res.Flip = e.Now().Sub(t0)
	res.FlipMillis = res.Flip.Milliseconds()
	res.Live, res.Promoted = target, true
	if addr, err := e.Address(ctx, e.StableService()); err == nil {
		res.Address = addr
	}
	if live == "" || live == target {
		return nil
	}
	res.ScaleDownAt = e.Now().Add(e.ScaleDownDelay)
	return e.setScaleDownAt(ctx, live, res.ScaleDownAt)
}

// waitAndPark keeps the old slot warm for the scale-down delay, then parks it.
// Detached, or interrupted, the deferred scale-down stays recorded and the
// next liftoff command on the app carries it out.
func (e *Client) waitAndPark(ctx context.Context, target, old string, detach bool) error {
	if old == "" || old == target {
		return nil
	}
	if detach && e.ScaleDownDelay > 0 {
		e.Log.Infof("slot %s stays warm for %s (instant rollback); the next liftoff command after that parks it", old, e.ScaleDownDelay)
		return nil
	}
	if e.ScaleDownDelay > 0 {
		e.Log.Infof("keeping slot %s warm for %s so rollback is instant (Ctrl-C leaves it to the next liftoff command)", old, e.ScaleDownDelay)
		e.Log.Waiting(fmt.Sprintf("scale-down of %s at %s", old, e.Now().Add(e.ScaleDownDelay).Local().Format(time.TimeOnly)))
		select {
		case <-ctx.Done():
			return nil // the flip happened; parking is deferred, not lost
		case <-time.After(e.ScaleDownDelay):
		}
	}
	return e.parkDue(ctx, target)
}

// Promote flips traffic to the slot on the preview Service (after deploy --no-promote).
func (e *Client) Promote(ctx context.Context, detach bool) (res *Result, err error) {
	start := e.Now()
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: ActionPromote}
	defer func() { e.recordSlot(ctx, &rec, res); e.record(ctx, rec, start, res, err) }()
	live, _, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	target, _, err := e.serviceSlot(ctx, e.PreviewService())
	if err != nil {
		return nil, err
	}
	if target == "" {
		return nil, failure.Newf(failure.NotFound, "deploy first: liftoff deploy --no-promote", "nothing to promote: %s has no preview slot", e.Ref.App)
	}
	res = &Result{Live: live, Previous: live, Slot: target, Service: e.StableService(), Preview: e.PreviewService()}
	if target == live {
		e.Log.Infof("slot %s is already live", target)
		return res, nil
	}
	if err := e.checkReady(ctx, target); err != nil {
		return nil, err
	}
	if err := e.promote(ctx, target, live, detach, res); err != nil {
		return nil, err
	}
	return res, e.waitAndPark(ctx, target, live, detach)
}

// checkReady verifies a slot has all its replicas ready right now.
func (e *Client) checkReady(ctx context.Context, slot string) error {
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return failure.Newf(failure.NotFound, "deploy it first", "slot %s has never been deployed", slot)
	}
	if err != nil {
		return err
	}
	want := ptr.Deref(d.Spec.Replicas, 0)
	if want == 0 || d.Status.ReadyReplicas < want || d.Status.ObservedGeneration < d.Generation {
		return failure.Newf(failure.Health, "deploy again, or wait until it is ready", "slot %s is not ready (%d/%d)", slot, d.Status.ReadyReplicas, want)
	}
	return nil
}

// Rollback moves traffic back to the previous slot: instantly while it is
// still warm, otherwise after scaling it back up (its release still holds the
// previous image).
func (e *Client) Rollback(ctx context.Context, detach bool) (res *Result, err error) {
	start := e.Now()
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: ActionRollback}
	defer func() { e.recordSlot(ctx, &rec, res); e.record(ctx, rec, start, res, err) }()
	if err := e.recoverReleases(ctx); err != nil {
		return nil, err
	}
	live, ann, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return nil, err
	}
	if live == "" {
		return nil, failure.Newf(failure.NotFound, "deploy first", "%s has no live slot in %s", e.Ref.App, e.Ref.Namespace)
	}
	prev := ann[AnnPrevious]
	if prev == "" {
		prev = Other(live)
	}
	info, err := e.releaseInfo(prev)
	if err != nil {
		return nil, err
	}
	if info == nil {
		return nil, failure.Newf(failure.NotFound, "there is nothing older to return to", "slot %s was never deployed", prev)
	}
	res = &Result{Live: live, Previous: live, Slot: prev, Service: e.StableService(), Preview: e.PreviewService(), Revision: info.Revision}
	if e.checkReady(ctx, prev) != nil {
		e.Log.Infof("slot %s is parked: scaling it back to %d replicas", prev, info.Replicas)
		if err := e.setScaleDownAt(ctx, prev, time.Time{}); err != nil {
			return nil, err
		}
		if err := e.scale(ctx, prev, int32(info.Replicas)); err != nil {
			return nil, err
		}
		if err := e.waitReady(ctx, prev, int32(info.Replicas)); err != nil {
			return nil, e.dispose(ctx, prev, err)
		}
	} else {
		e.setScaleDownAt(ctx, prev, time.Time{})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := e.promote(ctx, prev, live, detach, res); err != nil {
		return nil, err
	}
	if err := e.ensureService(ctx, e.PreviewService(), live, nil); err != nil {
		return nil, err
	}
	return res, e.waitAndPark(ctx, prev, live, detach)
}

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
