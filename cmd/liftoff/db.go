package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// NewCmdDB groups the commands on the app's database.
func NewCmdDB(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "The app's database: backup, backups, restore, verify",
		Long: `db takes consistent backups of the app's PostgreSQL (in the cluster, RDS or an
external URL: pg_dump runs in the cluster, in the database's own image), lists
them, restores one (a safety backup first, then one transaction, then a smoke
test of the live slot) and verifies one by restoring it into a scratch database.
Backups are kept under ~/.liftoff/backups/<project>/<stack>/ with their metadata
(time, size, tables and rows, migration level, the app's image) beside them.
A backup of one stack restores into another: that is how data moves between
clusters (docs/data.md).`,
	}
	cmd.AddCommand(NewCmdDBBackup(f, nil), NewCmdDBBackups(f, nil), NewCmdDBRestore(f, nil), NewCmdDBVerify(f, nil))
	return cmd
}

// DBOptions are the flags every db command shares.
type DBOptions struct {
	f       *Factory
	Cluster ClusterFlags
	// Dir holds the stack's backups (default ~/.liftoff/backups/<project>/<stack>).
	Dir string
}

func (o *DBOptions) register(cmd *cobra.Command) {
	o.Cluster.register(cmd.Flags())
	cmd.Flags().StringVar(&o.Dir, "dir", "", "where the stack's backups are kept (default ~/.liftoff/backups/<project>/<stack>)")
}

// db opens the stack's database for command.
func (o *DBOptions) db(ctx context.Context, command string) (*launch.DB, launch.Deps, error) {
	f := o.f
	t, cfg, err := f.Site(ctx, o.Cluster)
	if err != nil {
		return nil, launch.Deps{}, err
	}
	if cfg == nil {
		return nil, launch.Deps{}, failure.Newf(failure.Config, "pass --stack", "liftoff db works on a stack's database: no stack here")
	}
	eng, err := f.Engine(ctx)
	if err != nil {
		return nil, launch.Deps{}, err
	}
	dir := o.Dir
	if dir == "" {
		dir = backup.Dir(f.Home(), eng.Project(), cfg.Name)
	}
	d := launch.Deps{Engine: eng, Printer: f.Printer(), Targets: f.targets(), Now: f.Now}
	return &launch.DB{Site: t, Config: cfg, Project: eng.Project(), Dir: dir, Self: lock.Self("liftoff db "+command, f.Getenv, f.Now())}, d, nil
}

// DBBackupOptions are the flags of `liftoff db backup`.
type DBBackupOptions struct {
	DBOptions
	To string
}

// NewCmdDBBackup takes a backup now.
func NewCmdDBBackup(f *Factory, runF func(*DBBackupOptions) error) *cobra.Command {
	o := &DBBackupOptions{DBOptions: DBOptions{f: f}}
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Take a consistent backup of the app's database now",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.To != "" && !strings.HasSuffix(o.To, ".dump") {
				return failure.Newf(failure.Config, "name the file NAME.dump", "--to %s: a backup's file name ends in .dump", o.To)
			}
			if runF != nil {
				return runF(o)
			}
			db, d, err := o.db(cmd.Context(), "backup")
			if err != nil {
				return err
			}
			f.Printer().StartPhase("backup")
			res, err := launch.Backup(cmd.Context(), d, db, o.To, "manual")
			f.Printer().EndPhase("backup", err)
			if err != nil {
				return err
			}
			f.Printer().Result(fmt.Sprintf("%s\n  %s, %d tables, %d rows, migration %s, took %s", res.Path, ui.Bytes(res.Size), len(res.Tables), res.Rows(),
				orDash(res.Migration), res.Duration.Round(time.Millisecond)), res)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().StringVar(&o.To, "to", "", "write the backup to this file (NAME.dump; its metadata goes beside it as NAME.json)")
	return cmd
}

// DBBackupsOptions are the flags of `liftoff db backups`.
type DBBackupsOptions struct{ DBOptions }

// NewCmdDBBackups lists the stack's backups.
func NewCmdDBBackups(f *Factory, runF func(*DBBackupsOptions) error) *cobra.Command {
	o := &DBBackupsOptions{DBOptions{f: f}}
	cmd := &cobra.Command{
		Use:   "backups",
		Short: "List the stack's backups: time, size, source stack, rows, migration level, why",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			db, d, err := o.db(cmd.Context(), "backups")
			if err != nil {
				return err
			}
			l, err := launch.ListBackups(cmd.Context(), d, db)
			if err != nil {
				return err
			}
			var b strings.Builder
			if len(l.Local)+len(l.Cluster) == 0 {
				fmt.Fprintf(&b, "no backups in %s (liftoff db backup takes one)\n", db.Dir)
			} else {
				w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
				fmt.Fprintln(w, "NAME\tWHERE\tTIME\tSIZE\tSTACK\tROWS\tMIGRATION\tWHY")
				for _, group := range []struct {
					where string
					list  []*backup.Meta
				}{{"here", l.Local}, {"cluster", l.Cluster}} {
					for _, m := range group.list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, group.where, m.Time.Local().Format(time.DateTime), ui.Bytes(m.Size),
							orDash(m.Stack), m.Rows(), orDash(m.Migration), orDash(m.Reason))
					}
				}
				w.Flush()
				fmt.Fprintf(&b, "(here: %s; cluster: the scheduled backups' volume)\n", db.Dir)
			}
			if l.ClusterError != "" {
				fmt.Fprintf(&b, "the cluster's backups could not be listed: %s\n", l.ClusterError)
			}
			f.Printer().Result(b.String(), l)
			return nil
		},
	}
	o.register(cmd)
	return cmd
}

// DBRestoreOptions are the flags of `liftoff db restore`.
type DBRestoreOptions struct {
	DBOptions
	Backup string
	// NoSafetyBackup skips the backup of the data being replaced.
	NoSafetyBackup bool
}

// NewCmdDBRestore restores a backup into the stack's database.
func NewCmdDBRestore(f *Factory, runF func(*DBRestoreOptions) error) *cobra.Command {
	o := &DBRestoreOptions{DBOptions: DBOptions{f: f}}
	cmd := &cobra.Command{
		Use:   "restore NAME|PATH",
		Short: "Replace the app's data with a backup's (a safety backup first, then a smoke test of the live slot)",
		Long: `Restore replaces the app's data with a backup's: one of the stack's (by name, see
liftoff db backups) or any backup file, also one taken from another stack. It
asks first (--yes confirms), then takes a safety backup of the data it replaces,
restores in one transaction under the deploy lock (the app keeps running; its
queries wait until the restore commits, they do not fail or see half of it),
and smoke-tests the live slot. The safety backup's name is printed: restore it
to undo.`,
		Args: exactArgs(1, "NAME|PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Backup = args[0]
			if runF != nil {
				return runF(o)
			}
			ctx := cmd.Context()
			db, d, err := o.db(ctx, "restore")
			if err != nil {
				return err
			}
			m, err := db.Find(ctx, d, o.Backup)
			if err != nil {
				return err
			}
			what := fmt.Sprintf("replace the data of stack %s with backup %s (%s, %d rows, taken %s from stack %s)",
				db.Config.Name, m.Name, ui.Bytes(m.Size), m.Rows(), m.Time.Local().Format(time.DateTime), orDash(m.Stack))
			if err := f.Confirm(what); err != nil {
				return err
			}
			f.Printer().StartPhase("restore")
			res, err := launch.Restore(ctx, d, db, m.Path, o.NoSafetyBackup)
			f.Printer().EndPhase("restore", err)
			if err != nil {
				return err
			}
			text := fmt.Sprintf("restored %s into stack %s; the live slot passed its smoke test", m.Name, db.Config.Name)
			if res.Safety != nil {
				text += fmt.Sprintf("\n  the data it replaced: %s (liftoff db restore %s undoes this)", res.Safety.Name, res.Safety.Name)
			}
			f.Printer().Result(text, res)
			return nil
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&o.NoSafetyBackup, "no-safety-backup", false, "do not back up the data being replaced first")
	return cmd
}

// DBVerifyOptions are the flags of `liftoff db verify`.
type DBVerifyOptions struct {
	DBOptions
	Backup string
}

// NewCmdDBVerify restores a backup into a scratch database and checks it.
func NewCmdDBVerify(f *Factory, runF func(*DBVerifyOptions) error) *cobra.Command {
	o := &DBVerifyOptions{DBOptions: DBOptions{f: f}}
	cmd := &cobra.Command{
		Use:   "verify [NAME|PATH]",
		Short: "Restore a backup (default: the newest) into a scratch database and check its tables, rows and migration level",
		Args:  rangeArgs(0, 1, "[NAME|PATH]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Backup = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			ctx := cmd.Context()
			db, d, err := o.db(ctx, "verify")
			if err != nil {
				return err
			}
			if o.Backup == "" {
				l, err := launch.ListBackups(ctx, d, db)
				if err != nil {
					return err
				}
				switch {
				case len(l.Local) > 0 && (len(l.Cluster) == 0 || !l.Cluster[0].Time.After(l.Local[0].Time)):
					o.Backup = l.Local[0].Path
				case len(l.Cluster) > 0:
					o.Backup = l.Cluster[0].Name
				default:
					return failure.Newf(failure.NotFound, "take one with liftoff db backup", "no backups in %s, nor in the cluster", db.Dir)
				}
			}
			f.Printer().StartPhase("verify")
			res, err := launch.Verify(ctx, d, db, o.Backup)
			f.Printer().EndPhase("verify", err)
			if res != nil && res.Report != nil {
				text := fmt.Sprintf("backup %s restores: %d tables, %d rows, migration %s (a scratch copy, removed)", res.Backup.Name, len(res.Report.Tables),
					res.Report.Rows(), orDash(res.Report.Migration))
				if !res.Report.OK() {
					text = fmt.Sprintf("backup %s restores, but differs from its metadata:\n  %s", res.Backup.Name, strings.Join(res.Report.Problems, "\n  "))
				}
				f.Printer().Result(text, res)
			}
			return err
		},
	}
	o.register(cmd)
	return cmd
}
