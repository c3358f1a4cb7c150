package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// upload copies a dump into the pod's scratch volume: pg_restore needs a
// seekable file to find the data of a dump that was streamed (a streamed
// dump's table of contents holds no offsets).
const uploadPath = "/scratch/restore.dump"

func (t *Tools) upload(ctx context.Context, r io.Reader, size int64) error {
	if err := t.Upload(ctx, r, size, uploadPath); err != nil {
		return fmt.Errorf("upload the dump to %s: %w", t.name, err)
	}
	return nil
}

// Report is what a restore drill found.
type Report struct {
	Tables    map[string]int64 `json:"tables"`
	Migration string           `json:"migration,omitempty"`
	// Problems are where the restored copy differs from the metadata.
	Problems []string `json:"problems,omitempty"`
}

// Rows is the total of the restored tables' rows.
func (r *Report) Rows() int64 { return rows(r.Tables) }

// OK reports whether the drill found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify restores the dump of size bytes read from r into the pod's own
// scratch server and checks it against m: every table with its rows, the
// migration level. A corrupt or truncated dump fails with pg_restore's
// reason. The scratch copy goes with the pod.
func (t *Tools) Verify(ctx context.Context, r io.Reader, size int64, m *Meta) (*Report, error) {
	if err := t.upload(ctx, r, size); err != nil {
		return nil, err
	}
	if err := t.Shell(ctx, "exec pg_restore --exit-on-error --no-owner --no-acl -U scratch -d scratch "+uploadPath, nil, io.Discard); err != nil {
		return nil, fmt.Errorf("restore into a scratch database: %w", err)
	}
	var out bytes.Buffer
	if err := t.Shell(ctx, "exec psql -X -q -A -t -v ON_ERROR_STOP=1 -U scratch -d scratch", strings.NewReader(CountsSQL+"\n"+MigrationSQL+"\n"), &out); err != nil {
		return nil, fmt.Errorf("count the restored rows: %w", err)
	}
	rep := &Report{}
	tables, migration, _ := strings.Cut(strings.TrimRight(out.String(), "\n"), "\n")
	if err := json.Unmarshal([]byte(tables), &rep.Tables); err != nil {
		return nil, fmt.Errorf("count the restored rows: %q: %w", tables, err)
	}
	rep.Migration = migration
	rep.Problems = compare(m, rep)
	return rep, nil
}

// compare lists where a restored copy differs from what the backup's
// metadata says it holds.
func compare(m *Meta, rep *Report) []string {
	if m == nil || m.Tables == nil {
		return nil // a dump without metadata: the restore itself is the check
	}
	var problems []string
	names := make([]string, 0, len(m.Tables))
	for n := range m.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got, ok := rep.Tables[n]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("table %s is missing", n))
		case got != m.Tables[n]:
			problems = append(problems, fmt.Sprintf("table %s has %d rows, the backup counted %d", n, got, m.Tables[n]))
		}
	}
	for n := range rep.Tables {
		if _, ok := m.Tables[n]; !ok {
			problems = append(problems, fmt.Sprintf("table %s is not in the backup's metadata", n))
		}
	}
	if rep.Migration != m.Migration {
		problems = append(problems, fmt.Sprintf("migration level %q, the backup recorded %q", rep.Migration, m.Migration))
	}
	return problems
}

// Scheduled lists the backups the scheduled job keeps on the volume
// mounted at VolumePath (the pod needs Place.Claim), newest first.
func (t *Tools) Scheduled(ctx context.Context) ([]*Meta, error) {
	var out bytes.Buffer
	if err := t.Shell(ctx, `for f in `+VolumePath+`/*.json; do [ -e "$f" ] && cat "$f"; done; true`, nil, &out); err != nil {
		return nil, fmt.Errorf("list the scheduled backups: %w", err)
	}
	var list []*Meta
	dec := json.NewDecoder(&out)
	for dec.More() {
		m := &Meta{}
		if err := dec.Decode(m); err != nil {
			return nil, fmt.Errorf("a scheduled backup's metadata: %w", err)
		}
		m.Path = VolumePath + "/" + m.Name + ".dump"
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Time.After(list[j].Time) })
	return list, nil
}

// Fetch copies a scheduled backup from the volume to w, checked against
// its metadata's size and digest.
func (t *Tools) Fetch(ctx context.Context, m *Meta, w io.Writer) error {
	if strings.ContainsAny(m.Name, "/ '\\\"$`") {
		return fmt.Errorf("backup name %q", m.Name)
	}
	return t.Copy(ctx, VolumePath+"/"+m.Name+".dump", m.Size, m.SHA256, w, nil)
}
