package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestDumpVerifyRestore runs the tools pod on the real node with the
// PostgreSQL stand-in image: a database (the pod's own scratch server, as
// the app's) with rows and a migration level is dumped with its counts;
// the dump restores in a scratch database with every row; a truncated dump
// fails the drill with pg_restore's reason; a restore brings back deleted
// rows in one transaction.
func TestDumpVerifyRestore(t *testing.T) {
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	ctx := context.Background()
	ns := "data"
	cl.CreateNamespace(t, ns)
	image := cl.StandIns(t)["postgresImage"]
	// The "app's" database is a tools pod's own server, reached over the pod network.
	db := startDatabase(t, cl, ns, image)
	defer db.Close(ctx)
	seed := `CREATE TABLE schema_migrations (version bigint PRIMARY KEY);
INSERT INTO schema_migrations VALUES (1), (2);
CREATE TABLE users (id bigserial PRIMARY KEY, name text);
INSERT INTO users (name) SELECT 'user' || g FROM generate_series(1, 1000) g;
CREATE TABLE "odd name" (v int);
INSERT INTO "odd name" VALUES (1), (2), (3);`
	if err := db.Shell(ctx, `exec psql -X -q -v ON_ERROR_STOP=1 -U scratch -d scratch`, strings.NewReader(seed), nil); err != nil {
		t.Fatal(err)
	}

	tools, err := StartTools(ctx, Place{Kube: cl.Client, Rest: cl.Rest, Namespace: ns, App: "app", Image: image, URLSecret: "app-env", URLKey: "DATABASE_URL"})
	if err != nil {
		t.Fatal(err)
	}
	defer tools.Close(ctx)
	var dump bytes.Buffer
	m, err := tools.Dump(ctx, &dump, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"public.schema_migrations": 2, "public.users": 1000, `public.odd name`: 3}
	for k, v := range want {
		if m.Tables[k] != v {
			t.Errorf("counted %s: %d, want %d (%v)", k, m.Tables[k], v, m.Tables)
		}
	}
	if m.Migration != "2" || m.Size != int64(dump.Len()) || len(m.SHA256) != 64 {
		t.Errorf("meta %+v (dump %d bytes)", m, dump.Len())
	}

	rep, err := tools.Verify(ctx, bytes.NewReader(dump.Bytes()), int64(dump.Len()), m)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	if _, err := tools.Verify(ctx, bytes.NewReader(dump.Bytes()[:dump.Len()/2]), int64(dump.Len()/2), m); err == nil || !strings.Contains(err.Error(), "pg_restore") {
		t.Errorf("a truncated dump: %v", err)
	}

	if err := db.Shell(ctx, `exec psql -X -q -v ON_ERROR_STOP=1 -U scratch -d scratch -c 'DELETE FROM users WHERE id > 10'`, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := tools.Restore(ctx, bytes.NewReader(dump.Bytes()), int64(dump.Len())); err != nil {
		t.Fatal(err)
	}
	var after bytes.Buffer
	if err := db.Shell(ctx, `exec psql -X -q -A -t -U scratch -d scratch -c 'SELECT count(*) FROM users'`, nil, &after); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(after.String()) != "1000" {
		t.Errorf("after the restore: %q users", after.String())
	}

	// Local keeping: metadata beside the dump, listed and found by name.
	dir := t.TempDir()
	m.Name, m.Path = "dev-1", filepath.Join(dir, "dev-1.dump")
	os.WriteFile(m.Path, dump.Bytes(), 0o600)
	if err := WriteMeta(m); err != nil {
		t.Fatal(err)
	}
	list, err := List(dir)
	if err != nil || len(list) != 1 || list[0].Tables["public.users"] != 1000 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if f, err := Find(dir, "dev-1"); err != nil || f.Path != m.Path {
		t.Errorf("find: %v %+v", err, f)
	}
}
