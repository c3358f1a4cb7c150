// Package backup takes, verifies and restores logical backups of an app's
// PostgreSQL (pg_dump's custom format), whichever kind it is: in the
// cluster, RDS or an external URL. The work runs in the cluster, in a
// short-lived pod of the database's own image (pg_dump, pg_restore and psql
// of the server's version), reached through the API server: nothing needs
// PostgreSQL's tools on the user's machine, nor a network path to the
// database from it. Backups land where the caller writes them (a local file
// with its metadata beside it) and come back from there.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Format is the dump format every backup uses: pg_dump's custom format,
// compressed, restorable table by table.
const Format = "pg_dump custom"

// MigrationsTable is where the app records its migration level: the
// bundled app's table, and golang-migrate's (max(version)).
const MigrationsTable = "public.schema_migrations"

// Meta describes one backup; it is kept beside the dump as NAME.json.
type Meta struct {
	Name    string    `json:"name"`
	Project string    `json:"project"`
	Stack   string    `json:"stack"`
	App     string    `json:"app"`
	Time    time.Time `json:"time"`
	// Size is the dump's size in bytes; SHA256 its digest.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Format string `json:"format"`
	// Database is the kind the dump came from (in-cluster, rds, external).
	Database string `json:"database"`
	// AppImage is what the live slot ran when the dump was taken.
	AppImage string `json:"app_image,omitempty"`
	// Migration is the app's migration level in the dump ("" when the
	// app keeps none in MigrationsTable).
	Migration string `json:"migration,omitempty"`
	// Tables are the dump's tables with their row counts, counted in the
	// dump's own snapshot.
	Tables map[string]int64 `json:"tables"`
	// Reason says why it was taken: manual, scheduled, before-restore,
	// before-migration, final (destroy).
	Reason string `json:"reason,omitempty"`
	// Verified: a restore drill counted the tables (scheduled backups).
	Verified bool `json:"verified,omitempty"`
	// Path is where the dump is (not stored).
	Path string `json:"path,omitempty"`
}

// Rows is the total of the tables' rows.
func (m *Meta) Rows() int64 { return rows(m.Tables) }

func rows(tables map[string]int64) int64 {
	var n int64
	for _, c := range tables {
		n += c
	}
	return n
}

// Dir is where a stack's backups are kept by default:
// <home>/backups/<project>/<stack>.
func Dir(home, project, stack string) string {
	return filepath.Join(home, "backups", project, stack)
}

// NewName is a backup's name: the stack, the time and why.
func NewName(stack, reason string, at time.Time) string {
	return fmt.Sprintf("%s-%s-%s", stack, at.UTC().Format("20060102T150405Z"), reason)
}

// MetaPath is the metadata file beside a dump.
func MetaPath(dump string) string { return strings.TrimSuffix(dump, ".dump") + ".json" }

// WriteMeta writes m beside the dump at m.Path, atomically.
func WriteMeta(m *Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := MetaPath(m.Path)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, path)
}

// ReadMeta reads the metadata beside a dump (or a .json path). A dump
// without one (copied from elsewhere) gets what its file says: name, size.
func ReadMeta(path string) (*Meta, error) {
	dump := strings.TrimSuffix(path, ".json")
	if !strings.HasSuffix(dump, ".dump") {
		dump += ".dump"
	}
	st, err := os.Stat(dump)
	if err != nil {
		return nil, fmt.Errorf("backup %s: %w", dump, err)
	}
	m := &Meta{Name: strings.TrimSuffix(filepath.Base(dump), ".dump"), Size: st.Size(), Time: st.ModTime(), Format: Format}
	b, err := os.ReadFile(MetaPath(dump))
	if errors.Is(err, os.ErrNotExist) {
		m.Path = dump
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("backup metadata %s: %w", MetaPath(dump), err)
	}
	m.Path = dump
	return m, nil
}

// List reads every backup in dir, newest first (none when dir is missing).
func List(dir string) ([]*Meta, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	var out []*Meta
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".dump") {
			continue
		}
		m, err := ReadMeta(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

// Find resolves what a user names: a path to a dump (or its .json), or
// the name of a backup in dir.
func Find(dir, what string) (*Meta, error) {
	if strings.ContainsRune(what, os.PathSeparator) || strings.HasSuffix(what, ".dump") || strings.HasSuffix(what, ".json") {
		return ReadMeta(what)
	}
	return ReadMeta(filepath.Join(dir, what+".dump"))
}
