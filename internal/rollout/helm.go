package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// values builds the chart values for a slot and validates them against the
// chart's schema before anything changes.
func (e *Client) values(slot string, img Image, o DeployOptions, secretsVersion string) (map[string]any, error) {
	env := map[string]any{"secretName": o.secretName(e.Ref.App)}
	if secretsVersion != "" {
		env["appSecretName"] = e.SecretsName(secretsVersion)
	}
	vals := map[string]any{
		"app": e.Ref.App, "slot": slot, "replicas": o.Replicas,
		"image": map[string]any{"repository": img.Repository, "digest": img.Digest, "tag": img.Tag},
		"env":   env,
		// The version is on the pod template even when empty, so a slot's
		// pods restart when the app's secrets change and status can tell
		// which slot runs which version.
		"podAnnotations": map[string]any{AnnSecretsVersion: secretsVersion},
	}
	if o.OTLPEndpoint != "" {
		vals["env"].(map[string]any)["otlpEndpoint"] = o.OTLPEndpoint
	}
	extra := map[string]any{}
	for k, v := range o.Env {
		extra[k] = v
	}
	if len(o.Migrate) > 0 {
		// liftoff migrates before the slot starts: the app must not.
		extra["MIGRATE_ON_START"] = "false"
	}
	if len(extra) > 0 {
		vals["env"].(map[string]any)["extra"] = extra
	}
	if len(o.PodLabels) > 0 {
		vals["podLabels"] = o.PodLabels
	}
	if len(o.ImagePullSecrets) > 0 {
		var ps []any
		for _, s := range o.ImagePullSecrets {
			ps = append(ps, map[string]any{"name": s})
		}
		vals["imagePullSecrets"] = ps
	}
	for k, v := range o.Values {
		if k == "podAnnotations" {
			if m, ok := v.(map[string]any); ok {
				for ak, av := range m {
					vals[k].(map[string]any)[ak] = av
				}
				continue
			}
		}
		vals[k] = v
	}
	// Schema validation wants plain JSON types (map[string]any, float64...).
	b, err := json.Marshal(vals)
	if err == nil {
		vals = map[string]any{}
		err = json.Unmarshal(b, &vals)
	}
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	merged, err := chartutil.CoalesceValues(e.chart, vals)
	if err == nil {
		err = chartutil.ValidateAgainstSchema(e.chart, merged)
	}
	if err != nil {
		return nil, failure.New(failure.Config, fmt.Errorf("chart values: %w", err), "fix the value named above; nothing was changed")
	}
	return vals, nil
}

// apply installs or upgrades a slot's release, without Helm's own wait:
// liftoff waits itself, failing fast.
func (e *Client) apply(ctx context.Context, slot string, vals map[string]any) (*release.Release, error) {
	name := e.Release(slot)
	hist := action.NewHistory(e.helm)
	hist.Max = 1
	if _, err := hist.Run(name); errors.Is(err, driver.ErrReleaseNotFound) {
		in := action.NewInstall(e.helm)
		in.ReleaseName, in.Namespace, in.Timeout = name, e.Ref.Namespace, 2*time.Minute
		rel, err := in.RunWithContext(ctx, e.chart, vals)
		if err != nil {
			return nil, failure.New(failure.Engine, fmt.Errorf("helm install %s: %w", name, err), "see the error above")
		}
		return rel, nil
	} else if err != nil {
		return nil, fmt.Errorf("helm history %s: %w", name, err)
	}
	up := action.NewUpgrade(e.helm)
	up.Namespace, up.Timeout, up.MaxHistory = e.Ref.Namespace, 2*time.Minute, 10
	rel, err := up.RunWithContext(ctx, name, e.chart, vals)
	if err != nil {
		return nil, failure.New(failure.Engine, fmt.Errorf("helm upgrade %s: %w", name, err), "see the error above")
	}
	return rel, nil
}

// recoverReleases repairs releases an interrupted run left pending: an
// interrupted upgrade or rollback goes back to the last deployed revision, an
// interrupted first install is removed. Only called under the deploy lock.
func (e *Client) recoverReleases(ctx context.Context) error {
	if err := e.settleShift(ctx); err != nil {
		return err
	}
	for _, slot := range []string{Blue, Green} {
		name := e.Release(slot)
		hist := action.NewHistory(e.helm)
		hist.Max = 20
		rels, err := hist.Run(name)
		if errors.Is(err, driver.ErrReleaseNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("helm history %s: %w", name, err)
		}
		last := rels[len(rels)-1]
		for _, r := range rels {
			if r.Version > last.Version {
				last = r
			}
		}
		if !last.Info.Status.IsPending() {
			continue
		}
		var deployed *release.Release
		for _, r := range rels {
			if r.Version < last.Version && (r.Info.Status == release.StatusDeployed || r.Info.Status == release.StatusSuperseded) &&
				(deployed == nil || r.Version > deployed.Version) {
				deployed = r
			}
		}
		// Mark the stuck revision failed so Helm lets us act on the release.
		last.Info.Status = release.StatusFailed
		last.Info.Description = "interrupted; marked failed by liftoff"
		if err := e.helm.Releases.Update(last); err != nil {
			return fmt.Errorf("mark %s revision %d failed: %w", name, last.Version, err)
		}
		if deployed == nil {
			e.Log.Warnf("release %s was left installing by an interrupted run: removing it", name)
			un := action.NewUninstall(e.helm)
			un.Timeout = 2 * time.Minute
			if _, err := un.Run(name); err != nil {
				return fmt.Errorf("remove interrupted install %s: %w", name, err)
			}
			continue
		}
		e.Log.Warnf("release %s was left %s at revision %d by an interrupted run: rolling back to revision %d",
			name, "pending", last.Version, deployed.Version)
		rb := action.NewRollback(e.helm)
		rb.Version, rb.Timeout, rb.MaxHistory = deployed.Version, 2*time.Minute, 10
		if err := rb.Run(name); err != nil {
			return fmt.Errorf("roll back interrupted %s: %w", name, err)
		}
	}
	return nil
}

// releaseInfo is one slot's release as status shows it.
type releaseInfo struct {
	Revision int
	Status   string
	Replicas int
}

func (e *Client) releaseInfo(slot string) (*releaseInfo, error) {
	st := action.NewStatus(e.helm)
	rel, err := st.Run(e.Release(slot))
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ri := &releaseInfo{Revision: rel.Version, Status: rel.Info.Status.String(), Replicas: 2}
	if r, ok := rel.Config["replicas"]; ok {
		switch n := r.(type) {
		case int:
			ri.Replicas = n
		case float64:
			ri.Replicas = int(n)
		case int64:
			ri.Replicas = int(n)
		}
	}
	return ri, nil
}
