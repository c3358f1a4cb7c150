package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// DB is where a stack's database is and where its backups go: the app's
// site (its namespace and the Secret with DATABASE_URL), the stack's
// config (the kind of database, the PostgreSQL image the tools run), and
// the local directory backups are kept in.
type DB struct {
	Site    Site
	Config  *config.Stack
	Project string
	// Dir holds the stack's backups (backup.Dir by default).
	Dir  string
	Self lock.Holder
	// client is the connection to the app's cluster, made once.
	client *rollout.Client
}

// inCluster reports whether the database is the in-cluster PostgreSQL
// whose logins liftoff manages.
func (db *DB) inCluster() bool {
	return db != nil && db.Config != nil && db.Config.Database.Mode == "in-cluster" && db.Config.Database.Password.IsSet()
}

// Client is the connection to the app's cluster, made at the first call.
func (db *DB) Client(d Deps) (*rollout.Client, error) {
	if db.client != nil {
		return db.client, nil
	}
	e, err := db.Site.Client(d, db.Self)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", db.Site.Namespace, err)
	}
	db.client = e
	return e, nil
}

// tools starts a tools pod beside the app, with the app's DATABASE_URL,
// and the scheduled backups' volume when the stack has one.
func (db *DB) tools(ctx context.Context, d Deps, withURL bool) (*backup.Tools, error) {
	e, err := db.Client(d)
	if err != nil {
		return nil, err
	}
	p := backup.Place{Kube: e.Kube, Rest: e.Rest, Namespace: db.Site.Namespace, App: db.Site.App, Image: db.Config.Images.Postgres,
		PullSecrets: db.Site.ImagePullSecrets}
	if _, err := e.Kube.CoreV1().PersistentVolumeClaims(db.Site.Namespace).Get(ctx, backup.ClaimName, metav1.GetOptions{}); err == nil {
		p.Claim = backup.ClaimName
	}
	if withURL {
		p.URLSecret, p.URLKey = db.Site.SecretName, "DATABASE_URL"
		if p.URLSecret == "" {
			p.URLSecret = outputs.EnvSecret(db.Site.App)
		}
		_, err := e.Kube.CoreV1().Secrets(db.Site.Namespace).Get(ctx, p.URLSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, failure.Newf(failure.NotFound, "run liftoff up first", "stack %s has no database yet: no Secret %s in namespace %s", db.Config.Name, p.URLSecret, db.Site.Namespace)
		}
		if err != nil {
			return nil, fmt.Errorf("read Secret %s: %w", p.URLSecret, err)
		}
	}
	d.Printer.Infof("starting database tools (%s) in %s", db.Config.Images.Postgres, db.Site.Namespace)
	return backup.StartTools(ctx, p)
}

// BackupResult is a backup taken, and where it is.
type BackupResult struct {
	*backup.Meta
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"duration_ms"`
}

// Backup dumps the stack's database to path (a new file in db.Dir when
// empty), with its metadata beside it. A failed or interrupted backup
// leaves no file behind.
func Backup(ctx context.Context, d Deps, db *DB, path, reason string) (*BackupResult, error) {
	start := d.Now()
	if path == "" {
		path = filepath.Join(db.Dir, backup.NewName(db.Config.Name, reason, start)+".dump")
	}
	if filepath.Ext(path) != ".dump" {
		return nil, failure.Newf(failure.Config, "name the file NAME.dump", "backup file %s: the name must end in .dump", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	t, err := db.tools(ctx, d, true)
	if err != nil {
		return nil, err
	}
	defer t.Close(ctx)
	tmp := path + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("backup file: %w", err)
	}
	defer os.Remove(tmp)
	m, err := t.Dump(ctx, f, func(n int64) { d.Printer.Progress("dump "+filepath.Base(path), n, 0, "bytes") })
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("back up the database of %s: %w", db.Config.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("backup file: %w", err)
	}
	m.Name, m.Project, m.Stack, m.App, m.Time, m.Path = trimDump(path), db.Project, db.Config.Name, db.Site.App, start.UTC(), path
	m.Database, m.Reason = db.Config.Database.Mode, reason
	if e, err := db.Client(d); err == nil {
		if st, err := e.Status(ctx); err == nil {
			for _, s := range st.Slots {
				if s.Live {
					m.AppImage = s.Image
				}
			}
		}
	}
	if err := backup.WriteMeta(m); err != nil {
		return nil, err
	}
	res := &BackupResult{Meta: m, Duration: d.Now().Sub(start)}
	res.Millis = res.Duration.Milliseconds()
	d.Printer.Infof("backed up %s: %d tables, %d rows, %s in %s", db.Config.Name, len(m.Tables), m.Rows(), ui.Bytes(m.Size), res.Duration.Round(time.Millisecond))
	return res, nil
}

func trimDump(path string) string {
	return filepath.Base(path[:len(path)-len(filepath.Ext(path))])
}

// VerifyResult is a restore drill's outcome.
type VerifyResult struct {
	Backup *backup.Meta   `json:"backup"`
	Report *backup.Report `json:"report"`
	Millis int64          `json:"duration_ms"`
}

// ErrVerify is a backup that did not restore as its metadata says.
var ErrVerify = errors.New("the backup does not restore as recorded")

// Verify restores a backup (a name in db.Dir, or a path) into a scratch
// database in the cluster, checks its tables, rows and migration level
// against its metadata, and removes the scratch copy. A corrupt or
// truncated backup fails with pg_restore's reason.
func Verify(ctx context.Context, d Deps, db *DB, what string) (*VerifyResult, error) {
	start := d.Now()
	m, err := db.Find(ctx, d, what)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(m.Path)
	if err != nil {
		return nil, fmt.Errorf("open backup: %w", err)
	}
	defer f.Close()
	t, err := db.tools(ctx, d, false)
	if err != nil {
		return nil, err
	}
	defer t.Close(ctx)
	size, err := fileSize(f)
	if err != nil {
		return nil, err
	}
	rep, err := t.Verify(ctx, progressReader(d, f, "upload "+m.Name, size), size, m)
	if err != nil {
		return nil, failure.New(failure.Health, fmt.Errorf("verify %s: %w", m.Name, err), "this backup cannot be restored; take a new one (liftoff db backup) and keep the old for inspection")
	}
	res := &VerifyResult{Backup: m, Report: rep, Millis: d.Now().Sub(start).Milliseconds()}
	if !rep.OK() {
		return res, failure.New(failure.Health, fmt.Errorf("verify %s: %w: %v", m.Name, ErrVerify, rep.Problems), "take a new backup; keep this one for inspection")
	}
	return res, nil
}

// fileSize is an open file's size: what is uploaded, whatever the
// metadata says (a truncated copy is caught by the restore, not here).
func fileSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("backup file: %w", err)
	}
	return st.Size(), nil
}

// progressReader reports the bytes read from r of total.
func progressReader(d Deps, r io.Reader, what string, total int64) io.Reader {
	return &reportingReader{r: r, report: func(n int64) { d.Printer.Progress(what, n, total, "bytes") }}
}

type reportingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (p *reportingReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.report(p.n)
	return n, err
}

// RestoreResult is a restore and the safety backup taken before it.
type RestoreResult struct {
	Restored *backup.Meta  `json:"restored"`
	Safety   *BackupResult `json:"safety_backup,omitempty"`
	Millis   int64         `json:"duration_ms"`
}

// Restore replaces the stack's data with a backup's (a name in db.Dir or a
// path), under the app's deploy lock: a safety backup of what is there
// first (unless skipSafety), then the restore in one transaction (the
// app's queries wait for it rather than fail), then a smoke test of the
// live slot. The safety backup's name is in the result, and in the error
// when the restore failed.
func Restore(ctx context.Context, d Deps, db *DB, what string, skipSafety bool) (*RestoreResult, error) {
	start := d.Now()
	m, err := db.Find(ctx, d, what)
	if err != nil {
		return nil, err
	}
	e, err := db.Client(d)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Restored: m}
	err = e.Locked(ctx, func(ctx context.Context) error {
		if !skipSafety {
			if res.Safety, err = Backup(ctx, d, db, "", "before-restore"); err != nil {
				return fmt.Errorf("safety backup: %w", err)
			}
		}
		f, err := os.Open(m.Path)
		if err != nil {
			return fmt.Errorf("open backup: %w", err)
		}
		defer f.Close()
		t, err := db.tools(ctx, d, true)
		if err != nil {
			return err
		}
		defer t.Close(ctx)
		size, err := fileSize(f)
		if err != nil {
			return err
		}
		if err := t.Restore(ctx, progressReader(d, f, "restore "+m.Name, size), size); err != nil {
			return err
		}
		d.Printer.Infof("restored %s into %s's database", m.Name, db.Config.Name)
		flushCache(ctx, d, db, e)
		return e.SmokeLive(ctx)
	})
	res.Millis = d.Now().Sub(start).Milliseconds()
	if err != nil && res.Safety != nil {
		return res, fmt.Errorf("restore %s (the data from before it is in %s: liftoff db restore %s): %w", m.Name, res.Safety.Name, res.Safety.Name, err)
	}
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", m.Name, err)
	}
	return res, nil
}

// Listing is the stack's backups: those kept here and those the cluster
// keeps (the scheduled ones), each newest first.
type Listing struct {
	Dir     string         `json:"dir"`
	Local   []*backup.Meta `json:"local"`
	Cluster []*backup.Meta `json:"cluster"`
	// ClusterError says why the cluster's could not be listed.
	ClusterError string `json:"cluster_error,omitempty"`
}

// ListBackups lists the stack's backups in db.Dir and, when the stack
// schedules backups, those on its volume in the cluster.
func ListBackups(ctx context.Context, d Deps, db *DB) (*Listing, error) {
	local, err := backup.List(db.Dir)
	if err != nil {
		return nil, err
	}
	l := &Listing{Dir: db.Dir, Local: local}
	if db.Config.Backup.Schedule == "" {
		return l, nil
	}
	t, err := db.tools(ctx, d, false)
	if err == nil {
		defer t.Close(ctx)
		l.Cluster, err = t.Scheduled(ctx)
	}
	if err != nil {
		l.ClusterError = err.Error()
	}
	return l, nil
}

// Find resolves a backup the user names: kept here (by name or path), or,
// by name, on the cluster's volume, from where it is copied into db.Dir.
func (db *DB) Find(ctx context.Context, d Deps, what string) (*backup.Meta, error) {
	m, err := backup.Find(db.Dir, what)
	if err == nil || filepath.Base(what) != what || db.Config.Backup.Schedule == "" {
		if err != nil {
			return nil, failure.New(failure.NotFound, err, "list the backups with liftoff db backups")
		}
		return m, nil
	}
	t, err := db.tools(ctx, d, false)
	if err != nil {
		return nil, err
	}
	defer t.Close(ctx)
	list, err := t.Scheduled(ctx)
	if err != nil {
		return nil, err
	}
	for _, cm := range list {
		if cm.Name != what {
			continue
		}
		if err := os.MkdirAll(db.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("backup directory: %w", err)
		}
		path := filepath.Join(db.Dir, cm.Name+".dump")
		d.Printer.Infof("copying %s from the cluster to %s", cm.Name, path)
		if err := fetch(ctx, t, cm, path); err != nil {
			return nil, err
		}
		cm.Path = path
		if err := backup.WriteMeta(cm); err != nil {
			return nil, err
		}
		return cm, nil
	}
	return nil, failure.Newf(failure.NotFound, "list the backups with liftoff db backups", "no backup %s here (%s) nor in the cluster", what, db.Dir)
}

// fetch copies a scheduled backup to path, leaving nothing when it fails.
func fetch(ctx context.Context, t *backup.Tools, m *backup.Meta, path string) error {
	f, err := os.Create(path + ".partial")
	if err != nil {
		return fmt.Errorf("backup file: %w", err)
	}
	defer os.Remove(path + ".partial")
	err = t.Fetch(ctx, m, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(path+".partial", path)
}

// CopyData moves data between stacks: a backup of from's database (kept in
// from.Dir) restored into to's, with no safety backup of what to held (a
// preview's data is a copy). It is how a preview starts with its parent's
// data, and how a stack moves clusters.
func CopyData(ctx context.Context, d Deps, from, to *DB) (*RestoreResult, error) {
	b, err := Backup(ctx, d, from, "", "copy-to-"+to.Config.Name)
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", from.Config.Name, err)
	}
	res, err := Restore(ctx, d, to, b.Path, true)
	if err != nil {
		return res, fmt.Errorf("restore %s's data into %s: %w", from.Config.Name, to.Config.Name, err)
	}
	return res, nil
}
