package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Actions recorded in the release history.
const (
	ActionDeploy   = "deploy"
	ActionPromote  = "promote"
	ActionRollback = "rollback"
	ActionSecrets  = "secrets"
)

// historyKey is the ConfigMap key holding the history, oldest first.
const historyKey = "history.json"

// MaxHistory is how many records the history keeps.
const MaxHistory = 100

// Record is one deploy, promote, rollback or secrets change of the app. It
// is kept in the cluster, in the ConfigMap <app>-releases beside the Helm
// releases, so every machine sees the same history. It never holds a secret
// value: only the version (a content hash) of the app's secrets.
type Record struct {
	Time     time.Time `json:"time"`
	Action   string    `json:"action"`
	Slot     string    `json:"slot,omitempty"`
	Revision int       `json:"revision,omitempty"`
	Image    string    `json:"image,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	// Secrets is the version of the app's secrets the slot runs with.
	Secrets string `json:"secrets_version,omitempty"`
	// Who is user@host, or the CI run.
	Who string `json:"who"`
	// Result is ok, ready (deployed, not promoted), already-live (nothing
	// to do), rolled-back (live, then rolled back by its bake), failed or
	// interrupted.
	Result string `json:"result"`
	// Bake is the verdict of the release's bake under real traffic, with
	// its figures ("" when there was none).
	Bake       string `json:"bake,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// HistoryName is the ConfigMap that holds the app's release history.
func (e *Client) HistoryName() string { return e.Ref.App + "-releases" }

func (e *Client) who() string {
	if e.Self.CIRun != "" {
		return "ci:" + e.Self.CIRun
	}
	switch {
	case e.Self.User != "" && e.Self.Host != "":
		return e.Self.User + "@" + e.Self.Host
	case e.Self.User != "":
		return e.Self.User
	}
	return e.Self.Host
}

// releaseValues are the chart's release values: the image's digest (or its
// reference, for a release by tag), who, and when. A "$" in who would read as
// a relabelling reference in Prometheus: it becomes "_".
func (e *Client) releaseValues(img Image, at time.Time) map[string]any {
	digest := img.Digest
	if digest == "" {
		digest = img.Ref
	}
	return map[string]any{"digest": digest, "by": strings.ReplaceAll(e.who(), "$", "_"), "at": at.UTC().Format(time.RFC3339)}
}

// record appends what an action did to the history; the caller holds the
// deploy lock. A failure to record is a warning: the action itself is done.
func (e *Client) record(ctx context.Context, r Record, start time.Time, res *Result, err error) {
	r = e.complete(ctx, r, start, res, err)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if werr := e.appendRecord(cctx, r); werr != nil {
		e.Log.Warnf("could not record the %s in the release history: %v", r.Action, werr)
	}
}

// complete fills in a record from the action's result and error: when and
// by whom, the slot, the release, the bake and the outcome.
func (e *Client) complete(ctx context.Context, r Record, start time.Time, res *Result, err error) Record {
	r.Time, r.Who = start.UTC(), e.who()
	r.DurationMS = e.Now().Sub(start).Milliseconds()
	if res != nil {
		r.Slot, r.Revision = res.Slot, res.Revision
		if r.Image == "" {
			r.Image = res.Image
		}
		if n := len(res.Bake); n > 0 {
			r.Bake = res.Bake[n-1].String()
		}
	}
	if r.Digest == "" && r.Image != "" {
		if img, perr := ParseImage(r.Image); perr == nil {
			r.Digest = img.Digest
		}
	}
	switch {
	case err == nil && res != nil && res.AlreadyLive:
		r.Result = "already-live"
	case err == nil && res != nil && !res.Promoted && r.Action == ActionDeploy:
		r.Result = "ready"
	case err == nil:
		r.Result = "ok"
	case res != nil && res.RolledBack:
		r.Result = "rolled-back"
		r.Error = firstLine(err.Error())
	case failure.ClassOf(err) == failure.Interrupted || ctx.Err() != nil:
		r.Result = "interrupted"
	default:
		r.Result = "failed"
		r.Error = failure.ClassOf(err).String() + ": " + firstLine(err.Error())
	}
	return r
}

// Announcer hears of each release action's outcome (see Client.Announce).
type Announcer func(ctx context.Context, r Record, res *Result) error

// announcement sends one action's outcome once: as soon as it is known
// (before the old slot's warm wait, so the way back is still instant), or
// when the action ends.
type announcement struct {
	e     *Client
	start time.Time
	sent  bool
}

func (e *Client) announcement(start time.Time) *announcement {
	return &announcement{e: e, start: start}
}

// send tells the Announcer; its failure is a warning, never the action's.
func (a *announcement) send(ctx context.Context, r Record, res *Result, err error) {
	if a.sent || a.e.Announce == nil {
		return
	}
	a.sent = true
	r = a.e.complete(ctx, r, a.start, res, err)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if aerr := a.e.Announce(cctx, r, res); aerr != nil {
		a.e.Log.Warnf("could not announce the %s: %v (the %s itself is not affected)", r.Action, aerr, r.Action)
	}
}

// recordSlot fills in the image and secrets a promoted or restored slot
// runs, once (the announcement and the history share them).
func (e *Client) recordSlot(ctx context.Context, r *Record, res *Result) {
	if res == nil || res.Slot == "" || r.Image != "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	d, err := e.Kube.AppsV1().Deployments(e.Ref.Namespace).Get(cctx, e.Release(res.Slot), metav1.GetOptions{})
	if err != nil {
		return
	}
	if cs := d.Spec.Template.Spec.Containers; len(cs) > 0 {
		r.Image = cs[0].Image
	}
	r.Secrets = d.Spec.Template.Annotations[AnnSecretsVersion]
}

func (e *Client) appendRecord(ctx context.Context, r Record) error {
	cms := e.Kube.CoreV1().ConfigMaps(e.Ref.Namespace)
	for attempt := 0; ; attempt++ {
		cm, err := cms.Get(ctx, e.HistoryName(), metav1.GetOptions{})
		create := apierrors.IsNotFound(err)
		if err != nil && !create {
			return err
		}
		if create {
			cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: e.HistoryName(), Namespace: e.Ref.Namespace,
				Labels: map[string]string{LabelApp: e.Ref.App, LabelManagedBy: "liftoff"}}}
		}
		hist, _ := decodeHistory(cm)
		hist = append(hist, r)
		if len(hist) > MaxHistory {
			hist = hist[len(hist)-MaxHistory:]
		}
		b, err := json.Marshal(hist)
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[historyKey] = string(b)
		if create {
			_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < 5 {
			continue
		}
		return err
	}
}

func decodeHistory(cm *corev1.ConfigMap) ([]Record, error) {
	s := cm.Data[historyKey]
	if s == "" {
		return nil, nil
	}
	var hist []Record
	if err := json.Unmarshal([]byte(s), &hist); err != nil {
		return nil, fmt.Errorf("configmap %s/%s: %s: %w", cm.Namespace, cm.Name, historyKey, err)
	}
	return hist, nil
}

// History returns the last n records (all when n <= 0), newest first.
func (e *Client) History(ctx context.Context, n int) ([]Record, error) {
	cm, err := e.Kube.CoreV1().ConfigMaps(e.Ref.Namespace).Get(ctx, e.HistoryName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	hist, err := decodeHistory(cm)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(hist))
	for i := len(hist) - 1; i >= 0 && (n <= 0 || len(out) < n); i-- {
		out = append(out, hist[i])
	}
	return out, nil
}
