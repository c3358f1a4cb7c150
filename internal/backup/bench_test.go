package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// BenchmarkBackup is `make bench-data`: on the real node, the shortener's
// schema (its migrations) with LINKS links (default 100000 and 1000000) by
// 1 user per 100 links, each link with its "created" event and two clicks;
// then the paths liftoff takes: a consistent dump copied out of the cluster
// (liftoff db backup), a restore drill in a scratch server (db verify), and
// a restore in one transaction (db restore). It prints each one's time and
// the dump's size.
func BenchmarkBackup(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if s := os.Getenv("LINKS"); s != "" {
		var n int
		fmt.Sscan(s, &n)
		sizes = []int{n}
	}
	cl := testenv.StartClusterWith(b, testenv.ClusterOptions{RealNode: true})
	ctx := context.Background()
	image := cl.StandIns(b)["postgresImage"]
	schema := appSchema(b)
	for _, links := range sizes {
		b.Run(fmt.Sprintf("links=%d", links), func(b *testing.B) {
			ns := fmt.Sprintf("bench-%d", links)
			cl.CreateNamespace(b, ns)
			db := startDatabase(b, cl, ns, image)
			defer db.Close(ctx)
			start := time.Now()
			seed := schema + fmt.Sprintf(`
INSERT INTO users (username, email) SELECT 'user' || g, 'user' || g || '@example.com' FROM generate_series(1, %[1]d / 100) g;
INSERT INTO urls (user_id, short_code, original_url, title)
  SELECT 1 + g %% (%[1]d / 100), 'c' || g, 'https://example.com/page/' || g, 'Link ' || g FROM generate_series(1, %[1]d) g;
INSERT INTO events (url_id, user_id, event_type, details)
  SELECT u.id, u.user_id, t.event_type, jsonb_build_object('short_code', u.short_code, 'user_agent', 'bench')
    FROM urls u CROSS JOIN (VALUES ('created'), ('click'), ('click')) t(event_type);
ANALYZE;`, links)
			if err := db.Shell(ctx, `exec psql -X -q -v ON_ERROR_STOP=1 -U scratch -d scratch`, strings.NewReader(seed), nil); err != nil {
				b.Fatal(err)
			}
			seeded := time.Since(start)
			tools, err := StartTools(ctx, Place{Kube: cl.Client, Rest: cl.Rest, Namespace: ns, App: "app", Image: image, URLSecret: "app-env", URLKey: "DATABASE_URL"})
			if err != nil {
				b.Fatal(err)
			}
			defer tools.Close(ctx)
			path := filepath.Join(b.TempDir(), "bench.dump")
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start = time.Now()
			m, err := tools.Dump(ctx, f, nil)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			dumped := time.Since(start)
			verify := timed(b, func() error {
				r, err := os.Open(path)
				if err != nil {
					return err
				}
				defer r.Close()
				rep, err := tools.Verify(ctx, r, m.Size, m)
				if err == nil && !rep.OK() {
					err = fmt.Errorf("%v", rep.Problems)
				}
				return err
			})
			restore := timed(b, func() error {
				r, err := os.Open(path)
				if err != nil {
					return err
				}
				defer r.Close()
				return tools.Restore(ctx, r, m.Size)
			})
			b.StopTimer()
			var tables []string
			for t, n := range m.Tables {
				tables = append(tables, fmt.Sprintf("%s %d", strings.TrimPrefix(t, "public."), n))
			}
			sort.Strings(tables)
			fmt.Printf("bench-data: %d links (%s): seeded in %s; backup %s, %.1f MiB; verify %s; restore %s\n",
				links, strings.Join(tables, ", "), seeded.Round(time.Second), dumped.Round(100*time.Millisecond), float64(m.Size)/(1<<20),
				verify.Round(100*time.Millisecond), restore.Round(100*time.Millisecond))
		})
	}
}

func timed(b *testing.B, f func() error) time.Duration {
	b.Helper()
	start := time.Now()
	if err := f(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// appSchema is the shortener's schema: its migrations, in order.
func appSchema(b *testing.B) string {
	b.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(b), "app", "migrate", "sql", "*.sql"))
	if err != nil || len(files) == 0 {
		b.Fatalf("the app's migrations: %v", err)
	}
	sort.Strings(files)
	var sql bytes.Buffer
	for _, f := range files {
		s, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		sql.Write(s)
		sql.WriteString("\n")
	}
	return sql.String()
}

// startDatabase starts a tools pod as "the app's database" and puts its URL
// in the Secret app-env of ns, as a stack's env Secret holds it.
func startDatabase(tb testing.TB, cl *testenv.Cluster, ns, image string) *Tools {
	tb.Helper()
	ctx := context.Background()
	db, err := StartTools(ctx, Place{Kube: cl.Client, Rest: cl.Rest, Namespace: ns, App: "app", Image: image})
	if err != nil {
		tb.Fatal(err)
	}
	pod, err := cl.Client.CoreV1().Pods(ns).Get(ctx, db.Name(), metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var pw string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "POSTGRES_PASSWORD" {
			pw = e.Value
		}
	}
	url := "postgres://scratch:" + pw + "@" + pod.Status.PodIP + ":5432/scratch?sslmode=disable"
	if _, err := cl.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-env"},
		StringData: map[string]string{"DATABASE_URL": url}}, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	return db
}
