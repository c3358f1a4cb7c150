package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/backup"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// TestE2EData is the data's life on the real node, with the in-cluster
// PostgreSQL, through the real engine:
//   - db backup: a consistent dump with its metadata (tables, rows,
//     migration level); rows deleted, db restore brings them back (a safety
//     backup first) and the live slot passes its smoke test;
//   - db verify: a good backup restores in a scratch database with every
//     row; a truncated one fails with pg_restore's reason;
//   - scheduled backups (a one-minute schedule here) run in the cluster,
//     pass their drill, and retention prunes them;
//   - a namespace rename is refused at the plan, before any change;
//   - a second stack with default settings on the same cluster is refused
//     before anything changes, naming the owner; then one with a namespace
//     of its own is refused for the registry's node port;
//   - destroy --yes keeps a final backup, which restores into a brand-new
//     stack (another namespace, fresh PostgreSQL) with every row.
func TestE2EData(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	ns := "shortener" // the default namespace
	standIns := cl.StandIns(t)
	initArgs := func(stack string, extra ...string) []string {
		args := []string{"init", "-s", stack, "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--set", "observability=false", "--set", "bake=0s"}
		for k, v := range standIns {
			args = append(args, "--set", k+"="+v)
		}
		return append(args, extra...)
	}
	c.mustRun(initArgs("dev", "--set", "backupSchedule=* * * * *", "--set", "backupRetain=1")...)
	up := []string{"up", "--yes", "--platform", "linux/amd64", "--smoke", "on"}
	c.mustRun(append(up, "-s", "dev")...)
	url := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live URL", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, url); return err == nil })
	var codes []string
	for i := range 3 {
		codes = append(codes, shorten(t, url, fmt.Sprintf("https://example.com/kept/%d", i)))
	}
	for _, code := range codes {
		redirect(t, url, code) // a click each
	}

	// A backup now: its metadata counts what the dump holds.
	r := c.mustRun("db", "backup", "-s", "dev", "--json")
	var taken backup.Meta
	decodeResult(t, r.out, &taken)
	if taken.Tables["public.urls"] < 3 || taken.Tables["public.users"] < 3 || taken.Migration == "" || taken.Size == 0 || taken.Stack != "dev" {
		t.Fatalf("backup metadata: %+v", taken)
	}
	if st, err := os.Stat(taken.Path); err != nil || st.Size() != taken.Size {
		t.Fatalf("backup file %s: %v", taken.Path, err)
	}
	t.Logf("data figures: backup of %d rows, %d bytes", taken.Rows(), taken.Size)

	// Rows deleted, then restored: every link answers again.
	del, _ := http.NewRequest(http.MethodDelete, url+"/urls/"+idOf(t, url, codes[0]), nil)
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("delete a link: %v %v", resp, err)
	}
	if status := redirect(t, url, codes[0]); status != http.StatusNotFound {
		t.Fatalf("a deleted link answers %d", status)
	}
	start := time.Now()
	r = c.mustRun("db", "restore", taken.Name, "-s", "dev", "--yes")
	t.Logf("data figures: restore %s", time.Since(start).Round(100*time.Millisecond))
	if !strings.Contains(r.out, "before-restore") || !strings.Contains(r.out, "smoke test") {
		t.Errorf("restore did not name its safety backup or its smoke test:\n%s", r.out)
	}
	for _, code := range codes {
		if status := redirect(t, url, code); status != http.StatusFound {
			t.Errorf("after the restore, link %s answers %d", code, status)
		}
	}

	// Restore drills: a good backup passes; a truncated one fails, naming why.
	start = time.Now()
	r = c.mustRun("db", "verify", taken.Name, "-s", "dev", "--json")
	t.Logf("data figures: verify %s", time.Since(start).Round(100*time.Millisecond))
	var verified struct{ Report backup.Report }
	decodeResult(t, r.out, &verified)
	if !verified.Report.OK() || verified.Report.Tables["public.urls"] != taken.Tables["public.urls"] {
		t.Errorf("verify: %+v", verified.Report)
	}
	whole, err := os.ReadFile(taken.Path)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(t.TempDir(), "truncated.dump")
	os.WriteFile(truncated, whole[:len(whole)*2/3], 0o600)
	r = c.run("db", "verify", truncated, "-s", "dev")
	if r.code != 6 || !strings.Contains(r.err, "pg_restore") {
		t.Errorf("a truncated backup: exit %d\n%s", r.code, r.err)
	}

	// A renamed namespace would replace PostgreSQL and drop the old
	// namespace with its volume: refused at the plan, nothing changed.
	c.mustRun("config", "set", "-s", "dev", "namespace", "renamed")
	r = c.run(append(up, "-s", "dev")...)
	if r.code != 2 || !strings.Contains(r.err, "the plan would lose data") || !strings.Contains(r.err, "kubernetes:core/v1:Namespace") {
		t.Errorf("a namespace rename: exit %d\n%s", r.code, r.err)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, "renamed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused rename created namespace renamed: %v", err)
	}
	c.mustRun("config", "set", "-s", "dev", "namespace", ns)

	// A second stack with default settings on the same cluster: refused,
	// naming the owner, before anything changes.
	c.mustRun(initArgs("second")...)
	r = c.run(append(up, "-s", "second")...)
	if r.code != 2 || !strings.Contains(r.err, "belongs to stack") || !strings.Contains(r.err, "/dev") {
		t.Errorf("a second default stack: exit %d\n%s", r.code, r.err)
	}
	c.mustRun("config", "set", "-s", "second", "namespace", "second")
	r = c.run(append(up, "-s", "second")...)
	if r.code != 2 || !strings.Contains(r.err, "node port 30500") {
		t.Errorf("a second in-cluster registry: exit %d\n%s", r.code, r.err)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, "second", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused stack created its namespace: %v", err)
	}
	for _, code := range codes {
		if status := redirect(t, url, code); status != http.StatusFound {
			t.Errorf("after the refused stacks, link %s answers %d", code, status)
		}
	}
	c.mustRun("destroy", "-s", "second", "--yes")

	// Scheduled backups: two runs, the first pruned, the newest drilled.
	succeeded := map[string]bool{}
	waitFor(t, 3*time.Minute, "two scheduled backups", func() bool {
		jobs, err := cl.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, j := range jobs.Items {
			for _, cond := range j.Status.Conditions {
				switch {
				case cond.Type == batchv1.JobComplete && cond.Status == "True":
					succeeded[j.Name] = true
				case cond.Type == batchv1.JobFailed && cond.Status == "True":
					t.Fatalf("scheduled backup job %s failed: %s\n%s", j.Name, cond.Message, jobLogs(t, cl, ns, j.Name))
				}
			}
		}
		return len(succeeded) >= 2
	})
	r = c.mustRun("db", "backups", "-s", "dev", "--json")
	var listing struct {
		Local, Cluster []backup.Meta
	}
	decodeResult(t, r.out, &listing)
	if len(listing.Cluster) != 1 || !listing.Cluster[0].Verified || listing.Cluster[0].Tables["public.urls"] < 3 {
		t.Errorf("the cluster keeps %d scheduled backups (retain 1): %+v", len(listing.Cluster), listing.Cluster)
	}

	// Migrations run as a deploy phase. A breaking one is refused before
	// anything runs.
	migration := filepath.Join(c.dir, "app", "migrate", "sql", "0003_change.sql")
	os.WriteFile(migration, []byte("ALTER TABLE urls DROP COLUMN title;\n"), 0o644)
	liveImage := imageOf(t, cl, ns, selector(t, cl, ns))
	r = c.run(append(up, "-s", "dev")...)
	if r.code != 2 || !strings.Contains(r.err, "0003_change.sql drops a column") || !strings.Contains(r.err, "--allow-breaking-migration") {
		t.Errorf("a breaking migration: exit %d\n%s", r.code, r.err)
	}
	if got := imageOf(t, cl, ns, selector(t, cl, ns)); got != liveImage {
		t.Errorf("the refused migration's release went live: %s", got)
	}
	// One liftoff cannot see is breaking: the live slot's writes fail after
	// it. It is caught before the flip: the new slot never starts, the live
	// slot's reads never fail, and the way back is named.
	os.WriteFile(migration, []byte(`CREATE FUNCTION no_new_users() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'closed'; END $$;
CREATE TRIGGER no_new_users BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION no_new_users();
`), 0o644)
	idle := "green"
	if selector(t, cl, ns) == "green" {
		idle = "blue"
	}
	idleBefore := desiredReplicas(t, cl, ns, idle)
	load := startLoad(url + "/" + codes[1])
	r = c.run(append(up, "-s", "dev")...)
	load.stop()
	if r.code != 6 || !strings.Contains(r.err, "0003_change.sql") || !strings.Contains(r.err, "liftoff db restore") {
		t.Errorf("a migration that breaks the live slot: exit %d\n%s", r.code, r.err)
	}
	if desired := desiredReplicas(t, cl, ns, idle); desired != idleBefore {
		t.Errorf("the idle slot %s was started (%d replicas, was %d)", idle, desired, idleBefore)
	}
	if load.failed.Load() != 0 || load.ok.Load() == 0 {
		t.Errorf("reads on the live slot during the attempt: %d failed of %d", load.failed.Load(), load.ok.Load()+load.failed.Load())
	}
	t.Logf("data figures: %d reads on the live slot during the broken migration, %d failed", load.ok.Load()+load.failed.Load(), load.failed.Load())
	undo := regexp.MustCompile(`liftoff db restore (\S+)`).FindStringSubmatch(r.err)
	if undo == nil {
		t.Fatalf("no restore command in:\n%s", r.err)
	}
	c.mustRun("db", "restore", undo[1], "-s", "dev", "--yes", "--no-safety-backup")
	os.Remove(migration)
	c.mustRun(append(up, "-s", "dev")...)

	// A pull request's preview starts with a copy of its parent's data;
	// destroying it keeps no backup (it is a copy).
	c.mustRun(append(up, "-s", "pr-1", "--preview-of", "dev", "--with-data")...)
	purl := "http://" + clusterIP(t, cl, "shortener-pr-1", "shortener")
	for _, code := range codes {
		if status := redirect(t, purl, code); status != http.StatusFound {
			t.Errorf("in the preview with data, link %s answers %d", code, status)
		}
	}
	r = c.mustRun("destroy", "-s", "pr-1", "--yes", "--json")
	if strings.Contains(r.out, "final_backup") {
		t.Errorf("a preview's destroy took a backup:\n%s", r.out)
	}

	// destroy --yes keeps a final backup; a brand-new stack restores it.
	r = c.mustRun("destroy", "-s", "dev", "--yes", "--json")
	var destroyed struct {
		FinalBackup *backup.Meta `json:"final_backup"`
	}
	decodeResult(t, r.out, &destroyed)
	if destroyed.FinalBackup == nil || destroyed.FinalBackup.Tables["public.urls"] < 3 {
		t.Fatalf("destroy kept no final backup:\n%s", r.out)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		waitFor(t, 2*time.Minute, "the destroyed namespace to go", func() bool {
			_, err := cl.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}
	c.mustRun(initArgs("moved", "--set", "namespace=moved", "--set", "backupSchedule=off")...)
	c.mustRun(append(up, "-s", "moved")...)
	r = c.mustRun("db", "restore", destroyed.FinalBackup.Path, "-s", "moved", "--yes", "--no-safety-backup")
	murl := "http://" + clusterIP(t, cl, "moved", "shortener")
	for _, code := range codes {
		if status := redirect(t, murl, code); status != http.StatusFound {
			t.Errorf("in the new stack, link %s answers %d", code, status)
		}
	}
	r = c.mustRun("db", "backup", "-s", "moved", "--json")
	var moved backup.Meta
	decodeResult(t, r.out, &moved)
	// Every row came; the smoke tests after the restore added events of
	// their own (their user and link they delete again).
	for table, n := range destroyed.FinalBackup.Tables {
		exact := table == "public.users" || table == "public.urls" || table == "public.schema_migrations"
		if got := moved.Tables[table]; got < n || exact && got != n {
			t.Errorf("table %s: %d rows in the new stack, %d in the final backup", table, got, n)
		}
	}
	c.mustRun("destroy", "-s", "moved", "--yes", "--delete-data")
}

// decodeResult decodes the data of a --json run's result (or summary) event.
func decodeResult(t *testing.T, out string, v any) {
	t.Helper()
	for _, ev := range validEvents(t, out) {
		if ev.Type == ui.TypeResult || ev.Type == ui.TypeSummary {
			b, _ := json.Marshal(ev.Data)
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no result in:\n%s", out)
}

// idOf is a link's id by its short code.
func idOf(t *testing.T, base, code string) string {
	t.Helper()
	resp, err := http.Get(base + "/urls")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var links []struct {
		ID        int64  `json:"id"`
		ShortCode string `json:"short_code"`
	}
	json.NewDecoder(resp.Body).Decode(&links)
	for _, l := range links {
		if l.ShortCode == code {
			return fmt.Sprint(l.ID)
		}
	}
	t.Fatalf("no link %s", code)
	return ""
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(time.Second)
	}
}

// jobLogs are the logs of a job's pods.
func jobLogs(t *testing.T, cl *testenv.Cluster, ns, job string) string {
	t.Helper()
	ctx := context.Background()
	pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		raw, err := cl.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		fmt.Fprintf(&b, "pod %s: %s %v\n", p.Name, raw, err)
	}
	return b.String()
}

// load follows one short link in a loop on 4 connections, counting what
// answered 302 and what did not (errors included).
type load struct {
	ok, failed atomic.Int64
	done       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(link string) *load {
	l := &load{done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				resp, err := client.Get(link)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil && resp.StatusCode == http.StatusFound {
					l.ok.Add(1)
				} else {
					l.failed.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
}

// desiredReplicas is a slot's desired replicas (0 before its first deploy).
func desiredReplicas(t *testing.T, cl *testenv.Cluster, ns, slot string) int32 {
	t.Helper()
	d, err := cl.Client.AppsV1().Deployments(ns).Get(context.Background(), "shortener-"+slot, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return *d.Spec.Replicas
}
