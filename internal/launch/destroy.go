package launch

import (
	"context"
	"fmt"
	"time"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/teardown"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// DestroyOptions select what `destroy` does.
type DestroyOptions struct {
	Config *config.Stack
	// KeepState leaves the (empty) stack in the backend.
	KeepState bool
	KubeDir   string
	// AppTimeout bounds the app teardown (namespace deletion). Default 5m.
	AppTimeout time.Duration
	// SweepWait bounds each sweep's wait for what it deletes to go (default 10m).
	SweepWait time.Duration
	// Force carries on when the cluster cannot be reached (what runs there
	// stays), and removes the state even when the receipt lists leftovers.
	Force bool
	// DeleteData destroys a database without a final backup. Without it,
	// a database that goes with the stack (in the cluster, RDS) is backed
	// up first into BackupDir, and destroy stops when that fails. A
	// preview's is backed up only with Backup.
	DeleteData bool
	Backup     bool
	BackupDir  string
}

// keepsData reports whether destroy takes a final backup first.
func (o DestroyOptions) keepsData() bool {
	dies := o.Config.Database.Mode == "in-cluster" || o.Config.Database.Mode == "rds"
	return dies && !o.DeleteData && (o.Config.Preview == nil || o.Backup)
}

// DestroyResult is the receipt of `destroy`.
type DestroyResult struct {
	Stack        string            `json:"stack"`
	StateRemoved bool              `json:"state_removed"`
	Receipt      *teardown.Receipt `json:"receipt"`
	// Clean: the receipt lists nothing left.
	Clean bool `json:"clean"`
	// FinalBackup is the database's backup taken before it was deleted.
	FinalBackup *BackupResult `json:"final_backup,omitempty"`
	Phases      []PhaseResult `json:"phases"`
}

// PhaseTimings are the phases of the run, for the summary's last line.
func (r *DestroyResult) PhaseTimings() []PhaseResult { return r.Phases }

const fixUnreachable = "check the cluster is reachable (liftoff status); if it is gone for good, --force destroys the rest without it"

// Destroy deletes every resource of the stack, then its state:
//  1. kubernetes: what controllers turned into cloud resources (LoadBalancer
//     Services, Ingresses, PVCs and their volumes), waited for;
//  2. app: the releases, liftoff's Services and the app's namespace;
//  3. infrastructure: the engine's destroy;
//  4. leftovers: the target's sweep by the liftoff:stack tag (aws);
//  5. state: removed only when the receipt lists nothing left, or with Force.
func Destroy(ctx context.Context, d Deps, o DestroyOptions) (*DestroyResult, error) {
	release, err := d.lockStack(ctx, o.Config.Name)
	if err != nil {
		return nil, err
	}
	defer release()
	tg, err := d.Targets.For(o.Config)
	if err != nil {
		return nil, err
	}
	st, err := d.Engine.Stack(ctx, o.Config.Name, d.Targets.Program(o.Config, target.Facts{}), false)
	if err != nil {
		return nil, fmt.Errorf("open stack %s: %w", o.Config.Name, err)
	}
	if err := checkPlugins(d, tg, o.Config); err != nil {
		return nil, err
	}
	res := &DestroyResult{Stack: o.Config.Name, Receipt: &teardown.Receipt{}}
	rec := res.Receipt
	// forced lets --force carry on past an unreachable cluster, noting it on the receipt.
	forced := func(ctx context.Context, what string, err error) error {
		if err == nil || err == errSkipped || !o.Force || ctx.Err() != nil {
			return err
		}
		d.Printer.Warnf("%s: %v: --force carries on; anything still in the cluster stays", what, err)
		rec.Left = append(rec.Left, teardown.Item{Kind: "cluster", Name: o.Config.Name, Why: what + " failed: " + err.Error()})
		return nil
	}
	var app *rollout.Client
	swept := false
	sweep := func(ctx context.Context) error {
		r, err := tg.Leftovers(ctx, target.SweepInput{Project: d.Engine.Project(), Config: o.Config, Wait: o.SweepWait, Log: d.Printer})
		rec.Add(r)
		swept = err == nil
		return err
	}
	phases := []phase{
		{"final backup", func(ctx context.Context) error {
			if !o.keepsData() {
				return errSkipped
			}
			outs, err := st.Outputs(ctx)
			if err != nil {
				return fmt.Errorf("read the outputs of %s: %w", o.Config.Name, err)
			}
			if len(outs) == 0 {
				return errSkipped // never up'd: no data
			}
			t := SiteFromConfig(tg, d.Engine.Project(), o.Config)
			if err := ResolveSite(ctx, st, outs, &t, o.KubeDir); err != nil {
				return fmt.Errorf("where the database is: %w", err)
			}
			db := &DB{Site: t, Config: o.Config, Project: d.Engine.Project(), Dir: o.BackupDir, Self: d.StackLock.Self}
			if res.FinalBackup, err = Backup(ctx, d, db, "", "final"); err != nil {
				return failure.New(failure.ClassOf(err), fmt.Errorf("the final backup of %s's database failed, so nothing was destroyed: %w", o.Config.Name, err),
					"make the database reachable and rerun, or destroy without a backup: liftoff destroy --delete-data")
			}
			return nil
		}},
		{"kubernetes", func(ctx context.Context) (err error) {
			defer func() {
				if err != nil {
					app = nil // the cluster failed us once: the app phase does not wait on it again
				}
				err = forced(ctx, "sweeping the cluster", err)
			}()
			outs, err := st.Outputs(ctx)
			if err != nil {
				return fmt.Errorf("read the outputs of %s: %w", o.Config.Name, err)
			}
			if len(outs) == 0 {
				return errSkipped // never up'd: nothing deployed
			}
			t := SiteFromConfig(tg, d.Engine.Project(), o.Config)
			if err := ResolveSite(ctx, st, outs, &t, o.KubeDir); err != nil {
				return fmt.Errorf("where the app is: %w", err)
			}
			if app, err = t.Client(d, d.StackLock.Self); err != nil {
				return fmt.Errorf("connect to the app of %s: %w", o.Config.Name, err)
			}
			r, err := teardown.Kube{Client: app.Kube, Namespaces: tg.SweepNamespaces(o.Config, t.Namespace), Wait: o.SweepWait, Log: d.Printer}.Sweep(ctx)
			rec.Add(r)
			if err != nil && ctx.Err() == nil {
				return failure.New(failure.Engine, err, fixUnreachable)
			}
			return err
		}},
		{"app", func(ctx context.Context) (err error) {
			if app == nil {
				return errSkipped
			}
			timeout := o.AppTimeout
			if timeout == 0 {
				timeout = 5 * time.Minute
			}
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return forced(ctx, "tearing down the app", app.Teardown(tctx))
		}},
		{"infrastructure", func(ctx context.Context) error {
			before, err := st.Resources(ctx)
			if err != nil {
				return fmt.Errorf("list the resources of %s: %w", o.Config.Name, err)
			}
			derr := st.Destroy(ctx, d.Printer)
			if derr != nil && tg.HasLeftovers() && ctx.Err() == nil {
				// What blocks a destroy in a cloud is nearly always something
				// created outside Pulumi holding a subnet or security group.
				d.Printer.Warnf("destroy failed (%v): sweeping leftovers by tag, then retrying once", derr)
				if err := sweep(ctx); err != nil {
					return err
				}
				derr = st.Destroy(ctx, d.Printer)
			}
			after, err := st.Resources(ctx)
			if err != nil {
				return fmt.Errorf("list what is left of %s: %w", o.Config.Name, err)
			}
			left := map[string]bool{}
			for _, r := range after {
				left[r.URN] = true
				why := "still in Pulumi's state"
				if derr != nil {
					why += ": " + derr.Error()
				}
				rec.Left = append(rec.Left, teardown.Item{Kind: r.Type, Name: r.Name, Why: why})
			}
			for _, r := range before {
				if !left[r.URN] {
					rec.Removed = append(rec.Removed, teardown.Item{Kind: r.Type, Name: r.Name})
				}
			}
			return derr
		}},
	}
	if tg.HasLeftovers() {
		phases = append(phases, phase{tg.Name() + " leftovers", func(ctx context.Context) error {
			if swept {
				return errSkipped
			}
			return sweep(ctx)
		}})
	}
	phases = append(phases,
		phase{"state", func(ctx context.Context) error {
			if o.KeepState {
				return ui.ErrSkipped
			}
			if !rec.Clean() && !o.Force {
				return failure.New(failure.Engine, fmt.Errorf("%d thing(s) left (see the receipt): the stack's state is kept so that a rerun can finish", len(rec.Left)),
					"remove or release what the receipt names and rerun liftoff destroy; --force removes the state anyway")
			}
			if err := d.Engine.RemoveStack(ctx, o.Config.Name, false); err != nil {
				return fmt.Errorf("remove stack %s from the backend: %w", o.Config.Name, err)
			}
			res.StateRemoved = true
			return nil
		}})
	res.Phases, err = runPhases(ctx, d, phases)
	res.Clean = rec.Clean()
	return res, err
}
