package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// NewCmdSecrets groups the app's own environment secrets.
func NewCmdSecrets(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "The app's own environment secrets: set, unset, ls (applied blue-green, no rebuild)",
		Long: `Secrets manages environment variables of the app itself (API keys, tokens), stored
encrypted in the stack config (liftoff:appSecrets) and never printed. A change is
written to a new immutable Secret and rolled out blue-green with the live image:
the idle slot starts with the new environment, must become healthy and pass the
smoke test, then takes the traffic; the old slot keeps the old values for rollback.
DATABASE_URL and CACHE_URL come from the stack and cannot be set here.`,
	}
	cmd.AddCommand(NewCmdSecretsSet(f, nil), NewCmdSecretsUnset(f, nil), NewCmdSecretsLs(f, nil))
	return cmd
}

// SecretsSetOptions are the flags of `liftoff secrets set` and `unset`.
type SecretsSetOptions struct {
	f         *Factory
	Cluster   ClusterFlags
	Set       map[string]string
	Unset     []string
	FromStdin string // the one KEY given without =VALUE
	NoRestart bool
	LockWait  time.Duration
	// Rollout is how the change rolls out: --smoke, --ready-timeout.
	Rollout rollout.DeployOptions
}

// NewCmdSecretsSet sets secrets and rolls them out.
func NewCmdSecretsSet(f *Factory, runF func(*SecretsSetOptions) error) *cobra.Command {
	o := &SecretsSetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "set KEY=VALUE... | KEY",
		Short: "Set app secrets and restart the app blue-green with them (KEY alone reads the value from stdin)",
		Example: `  liftoff secrets set STRIPE_KEY=sk_live_...
  printf %s "$TOKEN" | liftoff secrets set GITHUB_TOKEN
  liftoff secrets set A=1 B=2 --no-restart`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return failure.Newf(failure.Config, "liftoff secrets set KEY=VALUE, or KEY to read the value from stdin", "no secret to set")
			}
			o.Set = map[string]string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					if o.FromStdin != "" || len(args) > 1 {
						return failure.Newf(failure.Config, "read one KEY from stdin at a time, or pass KEY=VALUE", "%s has no value", a)
					}
					o.FromStdin = k
				} else {
					o.Set[k] = v
				}
				if err := rollout.ValidSecretKey(k); err != nil {
					return err
				}
			}
			if err := checkRollout(o.Rollout); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runSecretsSet(cmd.Context(), o)
		},
	}
	o.register(cmd)
	return cmd
}

// NewCmdSecretsUnset removes secrets and rolls the change out.
func NewCmdSecretsUnset(f *Factory, runF func(*SecretsSetOptions) error) *cobra.Command {
	o := &SecretsSetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "unset KEY...",
		Short: "Remove app secrets and restart the app blue-green without them",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return failure.Newf(failure.Config, "liftoff secrets unset KEY...", "no secret to unset")
			}
			for _, k := range args {
				if err := rollout.ValidSecretKey(k); err != nil {
					return err
				}
			}
			o.Unset = args
			if err := checkRollout(o.Rollout); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runSecretsSet(cmd.Context(), o)
		},
	}
	o.register(cmd)
	return cmd
}

func (o *SecretsSetOptions) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	o.Cluster.register(fl)
	fl.BoolVar(&o.NoRestart, "no-restart", false, "only store the change; the next deploy or up applies it")
	fl.DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another deploy of the app to finish")
	fl.StringVar((*string)(&o.Rollout.Smoke), "smoke", string(rollout.SmokeAuto), "smoke test before the flip: auto, on, off")
	fl.DurationVar(&o.Rollout.ReadyTimeout, "ready-timeout", rollout.DefaultReadyTimeout, "fail when the restarted slot is not ready within this")
}

func runSecretsSet(ctx context.Context, o *SecretsSetOptions) error {
	f := o.f
	if o.FromStdin != "" {
		v, err := readValue(f, o.FromStdin, true)
		if err != nil {
			return err
		}
		o.Set[o.FromStdin] = v
	}
	change := launch.SecretsChange{Set: o.Set, Unset: o.Unset}
	if err := change.Validate(); err != nil {
		return err
	}
	open, err := f.OpenStack(ctx)
	if err != nil {
		return err
	}
	var t launch.Site
	if !o.NoRestart {
		if t, _, err = f.Site(ctx, o.Cluster); err != nil {
			return err
		}
	}
	p := f.Printer()
	if !o.NoRestart {
		p.StartPhase("secrets")
	}
	res, err := launch.SetSecrets(ctx, launch.Deps{Printer: p, Now: f.Now}, launch.SecretsOptions{Stack: open.Stack, Site: t, Change: change,
		NoRestart: o.NoRestart, LockWait: o.LockWait, Rollout: o.Rollout, Self: lock.Self("liftoff secrets", f.Getenv, f.Now())})
	if !o.NoRestart {
		p.EndPhase("secrets", err)
	}
	if err != nil {
		return err
	}
	res.Stack = open.Config.Name
	var text string
	switch {
	case !res.Changed && res.Deploy == nil:
		text = fmt.Sprintf("%s: secrets unchanged (version %s)", t.App, orDash(res.Version))
	case o.NoRestart:
		text = fmt.Sprintf("stored secrets version %s (stack %s); the next deploy or up applies it", orDash(res.Version), open.Config.Name)
	default:
		r := res.Deploy.Result
		text = fmt.Sprintf("%s: slot %s is live with secrets version %s (image %s unchanged)", t.App, r.Live, orDash(res.Version), res.Deploy.Image)
	}
	p.Result(text, res)
	return nil
}

// SecretsLsOptions are the flags of `liftoff secrets ls`.
type SecretsLsOptions struct {
	f       *Factory
	Cluster ClusterFlags
}

// NewCmdSecretsLs lists names and versions, never values.
func NewCmdSecretsLs(f *Factory, runF func(*SecretsLsOptions) error) *cobra.Command {
	o := &SecretsLsOptions{f: f}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the app's secrets (names and when each changed, never values) and which slot runs which version",
		Args:    exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runSecretsLs(cmd.Context(), o)
		},
	}
	o.Cluster.register(cmd.Flags())
	return cmd
}

func runSecretsLs(ctx context.Context, o *SecretsLsOptions) error {
	f := o.f
	open, err := f.OpenStack(ctx)
	if err != nil {
		return err
	}
	d := launch.Deps{Printer: f.Printer(), Now: f.Now}
	var tp *launch.Site
	if last, err := open.Stack.LastUpdate(ctx); err == nil && last != nil {
		if t, _, err := f.Site(ctx, o.Cluster); err == nil {
			tp = &t
		}
	}
	ls, err := launch.ListSecrets(ctx, d, open.Stack, tp, lock.Self("liftoff secrets ls", f.Getenv, f.Now()))
	if err != nil {
		return err
	}
	var b strings.Builder
	if len(ls.Secrets) == 0 {
		b.WriteString("no app secrets: liftoff secrets set KEY=VALUE\n")
	} else {
		fmt.Fprintf(&b, "%-32s  %s\n", "NAME", "CHANGED")
		for _, s := range ls.Secrets {
			fmt.Fprintf(&b, "%-32s  %s\n", s.Name, s.Changed.Local().Format(time.DateTime))
		}
	}
	fmt.Fprintf(&b, "stored version %s\n", orDash(ls.Version))
	for _, s := range ls.Slots {
		state := "old"
		if s.Secrets == ls.Version {
			state = "current"
		}
		role := ""
		if s.Live {
			role = ", live"
		}
		fmt.Fprintf(&b, "  slot %-5s runs version %s (%s%s)\n", s.Slot, orDash(s.Secrets), state, role)
	}
	ls.Stack = open.Config.Name
	f.Printer().Result(b.String(), ls)
	return nil
}
