package launch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/engine"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// SecretsChange sets and unsets some of the app's environment variables.
type SecretsChange struct {
	Set   map[string]string
	Unset []string
}

// Validate checks every key before anything is stored or deployed.
func (c SecretsChange) Validate() error {
	if len(c.Set) == 0 && len(c.Unset) == 0 {
		return failure.Newf(failure.Config, "liftoff secrets set KEY=VALUE, or liftoff secrets unset KEY", "no secret to change")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Set)) {
		if err := rollout.ValidSecretKey(k); err != nil {
			return err
		}
	}
	for _, k := range c.Unset {
		if err := rollout.ValidSecretKey(k); err != nil {
			return err
		}
		if _, ok := c.Set[k]; ok {
			return failure.Newf(failure.Config, "set or unset it, not both", "secret %s is both set and unset", k)
		}
	}
	return nil
}

// apply returns the secrets after the change, and whether anything changed.
func (c SecretsChange) apply(cur config.AppSecrets, now time.Time) (config.AppSecrets, bool, error) {
	next := maps.Clone(cur)
	changed := false
	for k, v := range c.Set {
		if old, ok := cur[k]; ok && old.Value == v {
			continue
		}
		next[k] = config.AppSecret{Value: v, Changed: now.UTC()}
		changed = true
	}
	for _, k := range c.Unset {
		if _, ok := cur[k]; !ok {
			return nil, false, failure.Newf(failure.NotFound, "liftoff secrets ls lists the names", "secret %s is not set", k)
		}
		delete(next, k)
		changed = true
	}
	return next, changed, nil
}

// ReadSecrets reads the app's secrets from the stack config (decrypted).
func ReadSecrets(ctx context.Context, st *engine.Stack) (config.AppSecrets, error) {
	all, err := st.AllConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the app secrets: %w", err)
	}
	return appSecrets(all)
}

// appSecrets decodes the app's secrets from a stack's (decrypted) config.
func appSecrets(all map[string]auto.ConfigValue) (config.AppSecrets, error) {
	v, ok := all[config.AppSecretsKey]
	if !ok {
		return config.AppSecrets{}, nil
	}
	s, err := config.DecodeAppSecrets(v.Value)
	if err != nil {
		return nil, failure.New(failure.Config, fmt.Errorf("%s %w", config.ShortName(config.AppSecretsKey), err), "rewrite it with liftoff secrets set")
	}
	return s, nil
}

func storeSecrets(ctx context.Context, st *engine.Stack, s config.AppSecrets) error {
	if len(s) == 0 {
		return st.RemoveConfig(ctx, config.AppSecretsKey, false)
	}
	return st.SetConfig(ctx, config.AppSecretsKey, engine.ConfigEntry{Value: s.Encode(), Secret: true}, false)
}

// SecretsOptions say how to change the app's secrets.
type SecretsOptions struct {
	Stack  *engine.Stack
	Site   Site
	Change SecretsChange
	// NoRestart only stores the change; the next deploy applies it.
	NoRestart bool
	// Rollout is how the change rolls out (Smoke, ReadyTimeout).
	Rollout  rollout.DeployOptions
	LockWait time.Duration
	Self     lock.Holder
	Tune     func(*rollout.Client)
}

// SecretsResult is what a change did. It never holds a value.
type SecretsResult struct {
	Stack   string        `json:"stack,omitempty"`
	Names   []string      `json:"names"`
	Version string        `json:"version"`
	Changed bool          `json:"changed"`
	Stored  bool          `json:"stored"`
	Deploy  *DeployResult `json:"deploy,omitempty"`
}

// SetSecrets stores a change of the app's secrets in the stack config
// (encrypted) and, unless told not to, rolls it out blue-green with the
// live image: the idle slot starts with the new environment, is checked
// and smoke-tested, then takes the traffic. The change is stored under the
// deploy lock, so two changes never lose one another; interrupted after
// that, the next deploy or up applies it.
func SetSecrets(ctx context.Context, d Deps, o SecretsOptions) (*SecretsResult, error) {
	if err := o.Change.Validate(); err != nil {
		return nil, err
	}
	cur, err := ReadSecrets(ctx, o.Stack)
	if err != nil {
		return nil, fmt.Errorf("read the app secrets: %w", err)
	}
	next, changed, err := o.Change.apply(cur, d.Now())
	if err != nil {
		return nil, err
	}
	res := &SecretsResult{Names: next.Names(), Version: rollout.SecretsVersion(next.Env()), Changed: changed}
	if o.NoRestart {
		if changed {
			if err := storeSecrets(ctx, o.Stack, next); err != nil {
				return nil, err
			}
			res.Stored = true
		}
		return res, nil
	}
	e, err := o.Site.Client(d, o.Self)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.Site.Namespace, err)
	}
	st, err := e.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the slots of %s: %w", o.Site.App, err)
	}
	if st.Live == "" {
		return nil, failure.Newf(failure.NotFound, "deploy the app first (liftoff up), or store it for the next deploy with --no-restart",
			"%s has never been deployed in namespace %s", o.Site.App, o.Site.Namespace)
	}
	if !changed && liveRuns(st, res.Version) {
		d.Printer.Infof("the live slot already runs these secrets (version %s): nothing to do", orNoneVersion(res.Version))
		return res, nil
	}
	ro := o.Rollout
	ro.ReuseLive, ro.Action, ro.Detach = true, rollout.ActionSecrets, true
	ro.Locked = func(ctx context.Context, ro *rollout.DeployOptions) error {
		// Re-read under the lock: a change made meanwhile is kept.
		cur, err := ReadSecrets(ctx, o.Stack)
		if err != nil {
			return fmt.Errorf("read the app's secrets: %w", err)
		}
		next, changed, err := o.Change.apply(cur, d.Now())
		if err != nil {
			return err
		}
		if changed {
			if err := storeSecrets(ctx, o.Stack, next); err != nil {
				return fmt.Errorf("store the app's secrets: %w", err)
			}
			res.Stored = true
		}
		res.Names, res.Version = next.Names(), rollout.SecretsVersion(next.Env())
		ro.AppSecrets = next.Env()
		return nil
	}
	dr, err := deployWith(ctx, d, e, DeployOptions{Site: o.Site, Rollout: ro, LockWait: o.LockWait, Self: o.Self, Tune: o.Tune})
	res.Deploy = dr
	return res, err
}

func liveRuns(st *rollout.Status, version string) bool {
	for _, s := range st.Slots {
		if s.Live {
			return s.Secrets == version
		}
	}
	return false
}

func orNoneVersion(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// SecretsListing is `liftoff secrets ls`: names and times, never values.
type SecretsListing struct {
	Stack   string       `json:"stack,omitempty"`
	Secrets []SecretInfo `json:"secrets"`
	// Version is what the stack config holds; slots show what each runs.
	Version string               `json:"version"`
	Slots   []rollout.SlotStatus `json:"slots,omitempty"`
	Live    string               `json:"live,omitempty"`
}

// SecretInfo is one variable's name and when it last changed.
type SecretInfo struct {
	Name    string    `json:"name"`
	Changed time.Time `json:"changed"`
}

// ListSecrets reads the stored names and, when the app is deployed, which
// version each slot runs.
func ListSecrets(ctx context.Context, d Deps, st *engine.Stack, t *Site, self lock.Holder) (*SecretsListing, error) {
	s, err := ReadSecrets(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("read the app secrets: %w", err)
	}
	out := &SecretsListing{Version: rollout.SecretsVersion(s.Env())}
	for _, n := range s.Names() {
		out.Secrets = append(out.Secrets, SecretInfo{Name: n, Changed: s[n].Changed})
	}
	if t == nil {
		return out, nil
	}
	e, err := t.Client(d, self)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", t.Namespace, err)
	}
	status, err := e.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the slots of %s: %w", t.App, err)
	}
	out.Live = status.Live
	for _, sl := range status.Slots {
		if sl.Revision > 0 {
			out.Slots = append(out.Slots, sl)
		}
	}
	return out, nil
}
