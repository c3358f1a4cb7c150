package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// DestroyOptions are the flags of `liftoff destroy`.
type DestroyOptions struct {
	f         *Factory
	LockWait  time.Duration
	KeepState bool
	Force     bool
	Wait      time.Duration
	// DeleteData destroys the database without a final backup; Backup
	// takes one of a preview's (which is skipped by default).
	DeleteData bool
	Backup     bool
}

// NewCmdDestroy deletes a stack.
func NewCmdDestroy(f *Factory, runF func(*DestroyOptions) error) *cobra.Command {
	o := &DestroyOptions{f: f}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Delete everything the stack created (its database backed up first), then the stack's state",
		Long: `Destroy deletes everything the stack created, then its state. A database that
goes with the stack (in the cluster, RDS) is backed up first, into
~/.liftoff/backups/<project>/<stack>/, and the receipt names the file: restore it
into any stack with liftoff db restore. When that backup fails, nothing is
destroyed. --delete-data destroys without a backup; a preview's database is
backed up only with --backup. --yes confirms, it never deletes data on its own.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runDestroy(cmd.Context(), o)
		},
	}
	cmd.Flags().DurationVar(&o.LockWait, "lock-wait", 0, "wait this long for another run on the stack to finish")
	cmd.Flags().BoolVar(&o.KeepState, "keep-state", false, "keep the empty stack (config and history) in the backend")
	cmd.Flags().BoolVar(&o.Force, "force", false, "carry on when the cluster is gone, and remove the state even when something is left")
	cmd.Flags().BoolVar(&o.DeleteData, "delete-data", false, "delete the database without taking a final backup")
	cmd.Flags().BoolVar(&o.Backup, "backup", false, "a preview: take a final backup of its database too")
	cmd.Flags().DurationVar(&o.Wait, "wait", 10*time.Minute, "how long to wait for load balancers, volumes and tagged leftovers to go before reporting them as left")
	return cmd
}

func runDestroy(ctx context.Context, o *DestroyOptions) error {
	f := o.f
	cfg, err := f.TeardownConfig(ctx)
	if err != nil {
		return err
	}
	d, err := f.LaunchDeps(ctx, "liftoff destroy", o.LockWait)
	if err != nil {
		return err
	}
	do := launch.DestroyOptions{Config: cfg, KeepState: o.KeepState, KubeDir: filepath.Join(f.Home(), "kube", d.Engine.Project()), Force: o.Force,
		SweepWait: o.Wait, DeleteData: o.DeleteData, Backup: o.Backup, BackupDir: backup.Dir(f.Home(), d.Engine.Project(), cfg.Name)}
	question := fmt.Sprintf("destroy every resource of stack %s", cfg.Name)
	switch {
	case do.DeleteData && cfg.Database.Mode != "external":
		question += " AND DELETE ITS DATABASE WITHOUT A BACKUP"
	case cfg.Database.Mode == "in-cluster" || cfg.Database.Mode == "rds":
		if cfg.Preview == nil || o.Backup {
			question += fmt.Sprintf(" (its database is backed up first into %s)", do.BackupDir)
		} else {
			question += " with its preview database (no backup: pass --backup to keep one)"
		}
	}
	if err := f.Confirm(question); err != nil {
		return err
	}
	res, err := launch.Destroy(ctx, d, do)
	if res != nil {
		printReceipt(f, res, err)
	}
	return err
}

// printReceipt is destroy's last word, also when it failed: what was
// removed, what is left and why, and whether the state went.
func printReceipt(f *Factory, res *launch.DestroyResult, err error) {
	text := fmt.Sprintf("stack %s destroyed", res.Stack)
	switch {
	case err != nil:
		text = fmt.Sprintf("stack %s NOT fully destroyed", res.Stack)
	case res.StateRemoved:
		text += " and removed from the backend"
	}
	if b := res.FinalBackup; b != nil {
		text += fmt.Sprintf("\nfinal backup of the database: %s (%d rows; liftoff db restore %s restores it into any stack)", b.Path, b.Rows(), b.Path)
	}
	f.Printer().Result(text+"\n"+res.Receipt.Text(), res)
}
