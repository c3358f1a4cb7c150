package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

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
	// Smoke and ReadyTimeout, when set, replace the client's for this
	// deploy: the smoke test's mode, and how long the new slot may take to
	// become ready.
	Smoke        SmokeMode
	ReadyTimeout time.Duration
	// Migrate is the app's migration command in its image (empty: the app
	// migrates itself at start). Its plan ("Migrate --plan") is read before
	// the new slot starts; a migration liftoff sees is breaking is refused
	// unless AllowBreakingMigration. The new slot runs with
	// MIGRATE_ON_START=false.
	Migrate                []string
	AllowBreakingMigration bool
	// BeforeMigrate runs under the deploy lock when migrations are
	// pending, before they run (a backup); it returns how to undo them
	// (the restore command), for the error when they fail.
	BeforeMigrate func(ctx context.Context, pending []Migration) (undo string, err error)
	// Bake judges the release by its real traffic after the flip (a zero
	// Window: no bake); Steps, when set (rising percentages ending at 100),
	// move traffic in steps, each baked.
	Bake  BakeOptions
	Steps []int
	// Env are plain environment variables of this release (not secrets).
	Env map[string]string
	// Autoscale is the autoscaler that follows the live slot (a zero Max: none).
	Autoscale Autoscale
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
	AlreadyLive bool `json:"already_live,omitempty"`
	// Migrations are the ones the deploy ran, by name.
	Migrations []string `json:"migrations,omitempty"`
	Service    string   `json:"service"`
	Preview    string   `json:"preview_service"`
	// Address is where the live Service answers (see Engine.Address).
	Address     string        `json:"address,omitempty"`
	ScaleDownAt time.Time     `json:"scale_down_at,omitzero"`
	Flip        time.Duration `json:"-"`
	FlipMillis  int64         `json:"flip_ms"`
	ToFlip      time.Duration `json:"-"`
	ToFlipMS    int64         `json:"to_flip_ms"`
	// Bake is what each bake (one per step) found.
	Bake []BakeResult `json:"bake,omitempty"`
	// RolledBack: the bake found a breach and traffic went back to Previous.
	RolledBack bool `json:"rolled_back,omitempty"`
}

// The steps of a deploy, after kamal-proxy's DeployService; each error of
// a step wraps its sentinel (errors.Is), keeping the cause's class.
var (
	// ErrPrepare: reading the live slot, the app's secrets and the values failed.
	ErrPrepare = errors.New("prepare")
	// ErrBringUp: the new slot could not be installed.
	ErrBringUp = errors.New("bring up")
	// ErrHealthGate: the new slot never became healthy (it was disposed of).
	ErrHealthGate = errors.New("health gate")
	// ErrSwap: traffic could not be moved to the new slot.
	ErrSwap = errors.New("swap")
	// ErrBake: the release failed its bake under real traffic (it was rolled back).
	ErrBake = errors.New("bake")
	// ErrDrain: the old slot could not be parked after the flip.
	ErrDrain = errors.New("drain")
)

// stepError says which step failed; errors.Is matches both the step's
// sentinel and the cause.
type stepError struct {
	step  error
	slot  string
	cause error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("%s slot %s: %v", e.step, e.slot, e.cause)
}

func (e *stepError) Unwrap() []error { return []error{e.step, e.cause} }

func step(sentinel error, slot string, err error) error {
	if err == nil {
		return nil
	}
	return &stepError{step: sentinel, slot: slot, cause: err}
}

// deployment is one deploy in progress: what it deploys, where, and what it
// found.
type deployment struct {
	e    *Client
	o    DeployOptions
	img  Image
	live string // the live slot when the deploy began ("" on the first)
	slot string // the slot being deployed
	vals map[string]any
	spec string
	// secretsVersion is the app's secrets the new slot reads.
	secretsVersion string
	res            *Result
	start          time.Time
}

// Deploy rolls an image out to the idle slot and, once it is healthy, moves
// traffic to it: prepare, bring up, health gate (disposing of the new slot
// when it fails, while the live one keeps serving), swap, drain.
func (e *Client) Deploy(ctx context.Context, o DeployOptions) (res *Result, err error) {
	d := &deployment{e: e, o: o, start: e.Now()}
	if err := d.validate(); err != nil {
		return nil, err
	}
	if err := e.ensureNamespace(ctx); err != nil {
		return nil, fmt.Errorf("deploy %s: %w", e.Ref.App, err)
	}
	ctx, l, err := e.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer l.release()
	rec := Record{Action: d.o.Action}
	say := e.announcement(d.start)
	defer func() {
		r := res
		if r == nil { // a failed deploy: the record says which slot and revision failed
			r = d.res
		}
		e.record(ctx, rec, d.start, r, err)
		say.send(ctx, rec, r, err)
	}()
	if rec.Secrets, err = d.prepare(ctx); err != nil {
		return nil, step(ErrPrepare, d.slot, err)
	}
	if d.alreadyLive(ctx) {
		return d.res, nil
	}
	if err := d.migrate(ctx); err != nil {
		return nil, step(ErrMigrate, d.slot, err)
	}
	if err := d.bringUp(ctx); err != nil {
		return nil, step(ErrBringUp, d.slot, err)
	}
	if err := d.healthGate(ctx); err != nil {
		return nil, step(ErrHealthGate, d.slot, e.dispose(ctx, d.slot, err))
	}
	if d.o.NoPromote {
		e.Log.Infof("slot %s is ready on %s/%s; promote with liftoff promote", d.slot, e.Ref.Namespace, e.PreviewService())
		return d.res, nil
	}
	if err := ctx.Err(); err != nil { // interrupted: never flip half-way through
		return nil, err
	}
	if len(d.o.Steps) > 1 && d.live != "" && d.o.Bake.Window > 0 {
		if err := d.shift(ctx); err != nil {
			return d.res, step(ErrBake, d.slot, err)
		}
	}
	if err := d.swap(ctx); err != nil {
		return nil, step(ErrSwap, d.slot, err)
	}
	if err := d.bakeLive(ctx); err != nil {
		return d.res, step(ErrBake, d.slot, err)
	}
	say.send(ctx, rec, d.res, nil)
	return d.res, step(ErrDrain, d.live, e.waitAndPark(ctx, d.slot, d.live, d.o.Detach))
}

// bakeLive judges the new live slot by its real traffic while the old one
// is warm, and moves traffic back at once on a breach. Without a previous
// slot (the first deploy) there is nothing to go back to: no bake.
func (d *deployment) bakeLive(ctx context.Context) error {
	e := d.e
	if d.o.Bake.Window <= 0 || d.live == "" || d.live == d.slot {
		return nil
	}
	r, err := e.bake(ctx, d.slot, d.o.Bake, 100)
	d.res.Bake = append(d.res.Bake, r)
	if err != nil {
		if ctx.Err() != nil {
			return failure.New(failure.Interrupted,
				fmt.Errorf("interrupted during the bake of slot %s after %s (%s): it stays live", d.slot, r.Figures.Elapsed.Round(time.Second), r.Figures),
				fmt.Sprintf("liftoff rollback moves traffic back to slot %s while it is warm", d.live))
		}
		return err
	}
	if r.Verdict != BakeFailed {
		return nil
	}
	t0 := e.Now()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := e.flip(cctx, d.live, d.slot); err != nil {
		return fmt.Errorf("bake: %s; moving traffic back to slot %s failed: %w", r.Reason, d.live, err)
	}
	if err := e.retargetHPA(cctx, d.live); err != nil {
		e.Log.Warnf("the autoscaler still follows slot %s: %v", d.slot, err)
	}
	d.res.Bake[len(d.res.Bake)-1].RolledBackMS = e.Now().Sub(t0).Milliseconds()
	d.res.Live, d.res.Promoted, d.res.RolledBack, d.res.ScaleDownAt = d.live, false, true, time.Time{}
	if err := e.setScaleDownAt(cctx, d.live, time.Time{}); err != nil {
		e.Log.Warnf("slot %s: %v", d.live, err)
	}
	return e.dispose(cctx, d.slot, bakeFailed(d.slot, d.live, d.res.Bake[len(d.res.Bake)-1]))
}

// validate checks the options and renders the values once, before any
// lock is taken or anything changes.
func (d *deployment) validate() (err error) {
	e := d.e
	if d.o.Replicas == 0 {
		d.o.Replicas = 2
	}
	if d.o.Action == "" {
		d.o.Action = ActionDeploy
	}
	if d.o.Smoke != "" {
		e.Smoke = d.o.Smoke
	}
	if d.o.ReadyTimeout > 0 {
		e.ReadyTimeout = d.o.ReadyTimeout
	}
	if err := ValidSteps(d.o.Steps); err != nil {
		return err
	}
	if a := d.o.Autoscale; a.Max > 0 && (a.Min < 1 || a.Max < a.Min || a.CPU < 1 || a.CPU > 100) {
		return failure.Newf(failure.Config, "use 1 <= min <= max, and a CPU target from 1 to 100 (%)", "autoscale min %d, max %d, cpu %d%%", a.Min, a.Max, a.CPU)
	}
	if len(d.o.Steps) > 1 && d.o.Bake.Window <= 0 {
		return failure.Newf(failure.Config, "give a bake window (--bake 1m): each step is held and judged for it", "steps %v without a bake", d.o.Steps)
	}
	for k := range d.o.Env {
		if err := validEnvKey("--env", k); err != nil {
			return err
		}
	}
	if d.o.ReuseLive {
		// Checked against a placeholder now; the live slot's image once locked.
		d.img = Image{Repository: "liftoff.invalid/live", Digest: "sha256:" + strings.Repeat("0", 64)}
	} else if d.img, err = ParseImage(d.o.Image); err != nil {
		return err
	}
	_, err = e.values(Blue, d.img, d.o, "")
	return err
}

// prepare reads what the deploy builds on, under the deploy lock: releases
// a killed run left pending, the live slot (and its image for a secrets
// change), the caller's own locked step, slots due to park; then chooses
// the idle slot and writes the secrets it will read. It returns the
// version of the app's secrets.
func (d *deployment) prepare(ctx context.Context) (string, error) {
	e := d.e
	if err := e.recoverReleases(ctx); err != nil {
		return "", err
	}
	live, _, err := e.serviceSlot(ctx, e.StableService())
	if err != nil {
		return "", err
	}
	d.live = live
	if d.o.ReuseLive {
		if d.img, err = e.liveImage(ctx, live); err != nil {
			return "", err
		}
	}
	if d.o.Locked != nil {
		if err := d.o.Locked(ctx, &d.o); err != nil {
			return "", err
		}
	}
	if err := e.parkDue(ctx, live); err != nil {
		return "", err
	}
	d.slot = Blue
	if live != "" {
		d.slot = Other(live)
	}
	d.res = &Result{Live: live, Previous: live, Slot: d.slot, Image: d.img.Ref, Service: e.StableService(), Preview: e.PreviewService()}
	if d.o.SecretData != nil {
		if err := e.ensureSecret(ctx, d.o.secretName(e.Ref.App), d.o.SecretData); err != nil {
			return "", err
		}
	}
	version, err := e.ensureAppSecrets(ctx, d.o.AppSecrets)
	if err != nil {
		return "", err
	}
	d.secretsVersion = version
	if d.vals, err = e.values(d.slot, d.img, d.o, version); err != nil {
		return version, err
	}
	// The stack's Secret (DATABASE_URL, CACHE_URL) is part of what a slot
	// runs: when the stack changes it, the app is redeployed.
	envHash, err := e.secretHash(ctx, d.o.secretName(e.Ref.App))
	if err != nil {
		return version, err
	}
	d.spec = specHash(d.vals, envHash)
	return version, nil
}

// alreadyLive reports (and settles the result) when the live slot already
// runs exactly this: nothing is deployed and traffic is left alone.
func (d *deployment) alreadyLive(ctx context.Context) bool {
	e := d.e
	if d.live == "" || d.o.Force || !e.runs(ctx, d.live, d.spec) {
		return false
	}
	e.Log.Infof("slot %s already runs %s with these values and secrets: already live, traffic left alone (--force-deploy redeploys)", d.live, d.img.Ref)
	d.res.Slot, d.res.AlreadyLive = d.live, true
	if info, _ := e.releaseInfo(d.live); info != nil {
		d.res.Revision = info.Revision
	}
	if addr, err := e.Address(ctx, e.StableService()); err == nil {
		d.res.Address = addr
	}
	d.res.ToFlipMS = e.Now().Sub(d.start).Milliseconds()
	return true
}

// bringUp installs the release into the idle slot behind the preview Service.
func (d *deployment) bringUp(ctx context.Context) error {
	e := d.e
	d.vals["podAnnotations"].(map[string]any)[AnnSpec] = d.spec
	// Who released what when, for the alerts (not part of the spec: the
	// same release by someone else is still the same release).
	d.vals["release"] = e.releaseValues(d.img, d.start)
	// A live slot scaled up since its deploy (by an autoscaler, or by hand)
	// is serving that much traffic: the new slot starts as big, or the
	// flip would hand it more than it can take. (Not part of the spec: the
	// count follows the traffic, not the release.)
	if n := e.replicasOf(ctx, d.live); n > d.o.Replicas {
		e.Log.Infof("slot %s runs %d replicas, more than the %d configured: slot %s starts with %d", d.live, n, d.o.Replicas, d.slot, n)
		d.o.Replicas = n
		d.vals["replicas"] = float64(n) // the JSON number the other values are
	}
	if err := e.ensureService(ctx, e.PreviewService(), d.slot, nil); err != nil {
		return err
	}
	e.Log.Infof("deploying %s to slot %s (live: %s)", d.img.Ref, d.slot, orNone(d.live))
	rel, err := e.apply(ctx, d.slot, d.vals)
	if err != nil {
		return err
	}
	d.res.Revision = rel.Version
	return e.setScaleDownAt(ctx, d.slot, time.Time{})
}

// healthGate waits for every replica of the new slot within the ready
// timeout, failing fast on states that do not heal, then smoke-tests it
// through the preview Service.
func (d *deployment) healthGate(ctx context.Context) error {
	if err := d.e.waitReady(ctx, d.slot, int32(d.o.Replicas)); err != nil {
		return err
	}
	return d.e.smoke(ctx)
}

// swap flips the live Service to the new slot; the old one stays warm.
func (d *deployment) swap(ctx context.Context) error {
	e := d.e
	if err := e.promote(ctx, d.slot, d.live, d.o.Detach, d.res); err != nil {
		return err
	}
	d.res.ToFlip = e.Now().Sub(d.start)
	d.res.ToFlipMS = d.res.ToFlip.Milliseconds()
	if err := e.ensureHPA(ctx, d.slot, d.o.Autoscale); err != nil {
		e.Log.Warnf("autoscaler: %v", err)
	}
	if err := e.pruneAppSecrets(ctx); err != nil {
		e.Log.Warnf("could not delete unused versions of the app's secrets: %v", err)
	}
	return nil
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

// replicasOf is how many replicas a slot's Deployment asks for (0 when
// there is none).
func (e *Client) replicasOf(ctx context.Context, slot string) int {
	if slot == "" {
		return 0
	}
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(ctx, e.Release(slot), metav1.GetOptions{})
	if err != nil || d.Spec.Replicas == nil {
		return 0
	}
	return int(*d.Spec.Replicas)
}
