package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// CountsSQL counts every table's rows (a partitioned table through its
// parent) in one JSON object, {"schema.table": rows}; MigrationSQL reads
// the app's migration level ("" when it keeps none in MigrationsTable).
// The scheduled backup job runs the same two queries in its restore drill.
const (
	CountsSQL = `SELECT coalesce(json_object_agg(n.nspname || '.' || c.relname,
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint
    ORDER BY n.nspname, c.relname), '{}')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%';`
	MigrationSQL = `SELECT coalesce(CASE WHEN to_regclass('` + MigrationsTable + `') IS NOT NULL THEN
  (xpath('/row/m/text()', query_to_xml('SELECT max(version)::text AS m FROM ` + MigrationsTable + `', false, true, '')))[1]::text END, '');`
)

// Dump writes a consistent dump of the database to w (pg_dump's custom
// format) and returns its metadata: every table's rows and the migration
// level, counted in the dump's own snapshot. A psql session exports that
// snapshot and holds it while pg_dump reads through it, so the counts are
// exactly what the dump holds, writes going on or not. progress, when
// set, hears the bytes written so far.
func (t *Tools) Dump(ctx context.Context, w io.Writer, progress func(int64)) (*Meta, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in, inW := io.Pipe()
	outR, out := io.Pipe()
	session := make(chan error, 1)
	go func() {
		err := t.Shell(ctx, `exec psql -X -q -A -t -v ON_ERROR_STOP=1 "$DATABASE_URL"`, in, out)
		out.CloseWithError(fmt.Errorf("psql ended: %v", err))
		session <- err
	}()
	lines := bufio.NewScanner(outR)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	next := func(prefix string) (string, error) {
		for lines.Scan() {
			if s, ok := strings.CutPrefix(lines.Text(), prefix); ok {
				return s, nil
			}
		}
		err := lines.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("read the database's snapshot session: %w", err)
	}
	fail := func(err error) (*Meta, error) {
		inW.Close()
		cancel()
		<-session
		return nil, err
	}
	if _, err := io.WriteString(inW, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSELECT 'snapshot ' || pg_export_snapshot();\n"); err != nil {
		return fail(fmt.Errorf("open a snapshot: %w", err))
	}
	snapshot, err := next("snapshot ")
	if err != nil {
		return fail(err)
	}
	m := &Meta{Format: Format}
	if _, err := io.WriteString(inW, "SELECT 'tables ' || ("+strings.TrimSuffix(CountsSQL, ";")+");\nSELECT 'migration ' || ("+strings.TrimSuffix(MigrationSQL, ";")+");\n"); err != nil {
		return fail(fmt.Errorf("count the rows: %w", err))
	}
	tables, err := next("tables ")
	if err != nil {
		return fail(err)
	}
	if err := json.Unmarshal([]byte(tables), &m.Tables); err != nil {
		return fail(fmt.Errorf("count the rows: %w", err))
	}
	if m.Migration, err = next("migration "); err != nil {
		return fail(err)
	}
	// The dump is written in the pod, then copied out and checked against
	// its size and digest there: what arrives is all of it.
	var remote bytes.Buffer
	if err := t.Shell(ctx, "pg_dump -Fc --no-owner --no-acl --snapshot="+snapshot+` -f `+dumpPath+` "$DATABASE_URL" && wc -c < `+dumpPath+` && sha256sum `+dumpPath, nil, &remote); err != nil {
		return fail(fmt.Errorf("pg_dump: %w", err))
	}
	io.WriteString(inW, "COMMIT;\n")
	inW.Close()
	if err := <-session; err != nil {
		return nil, fmt.Errorf("the snapshot's session: %w", err)
	}
	var wantSize int64
	var wantSum string
	if _, err := fmt.Sscanf(remote.String(), "%d\n%s", &wantSize, &wantSum); err != nil {
		return nil, fmt.Errorf("pg_dump's size and digest: %q: %w", remote.String(), err)
	}
	m.Size, m.SHA256 = wantSize, wantSum
	return m, t.Copy(ctx, dumpPath, wantSize, wantSum, w, progress)
}

// dumpPath is where Dump writes the dump in the pod.
const dumpPath = "/scratch/backup.dump"

// Copy streams the file at path out of the pod to w and checks that all of
// it arrived: size bytes with the sha256 digest sum ("" skips the digest).
func (t *Tools) Copy(ctx context.Context, path string, size int64, sum string, w io.Writer, progress func(int64)) error {
	got := &countWriter{progress: progress}
	digest := sha256.New()
	if err := t.Shell(ctx, "exec cat "+path, nil, io.MultiWriter(w, digest, got)); err != nil {
		return fmt.Errorf("copy %s out of the cluster: %w", path, err)
	}
	if got.n != size || sum != "" && hex.EncodeToString(digest.Sum(nil)) != sum {
		return fmt.Errorf("copy %s out of the cluster: %d bytes arrived of %d, or their digest differs: try again", path, got.n, size)
	}
	return nil
}

// countWriter counts bytes and reports them.
type countWriter struct {
	mu       sync.Mutex
	n        int64
	progress func(int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	n := c.n
	c.mu.Unlock()
	if c.progress != nil {
		c.progress(n)
	}
	return len(p), nil
}
