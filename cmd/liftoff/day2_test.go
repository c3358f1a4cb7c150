package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestE2EDay2Commands runs the day-2 commands against a live app on a real
// node (kubeconfig target, the real engine, real PostgreSQL and Redis):
//   - logs shows the line of a request just made, --json with the app's fields;
//   - logs -f follows across an up that flips to the other slot, and ends
//     cleanly on SIGINT;
//   - exec runs the app's own commands and returns their exit codes;
//   - secrets set restarts blue-green with the live image under load (0
//     failed requests) and the app sees the value; --no-restart only stores;
//     ls names versions per slot, never values;
//   - releases lists deploy, deploy, rollback, secrets with their digests;
//   - open holds a port-forward to the live Service until SIGINT;
//   - no secret value appears in anything liftoff printed, the history,
//     the events, the pod specs or the stack file.
func TestE2EDay2Commands(t *testing.T) {
	t.Parallel() // its own cluster and node: runs beside the others
	cl := testenv.StartClusterWith(t, testenv.ClusterOptions{RealNode: true})
	pg := testenv.StartPostgresOn(t, cl.Node.HostIP)
	rd := testenv.StartRedisOn(t, cl.Node.HostIP)
	c := newCLI(t).withEngine().withApp()
	ctx := context.Background()
	ns := "shop"
	var printed strings.Builder // everything liftoff wrote, to grep for secrets
	var printedMu sync.Mutex
	keep := func(r result) result {
		printedMu.Lock()
		defer printedMu.Unlock()
		printed.WriteString(r.out + r.err)
		return r
	}
	run := func(args ...string) result { t.Helper(); return keep(c.mustRun(args...)) }
	// The team channel: a Slack-format webhook the test runs; its token is a
	// secret like the others.
	hook := testenv.StartSinks(t)
	const hookToken = "T0KEN-4f1d9e"
	c.mustRun("init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set-secret", "notify=slack+"+hook.HTTP+"/hooks/"+hookToken,
		"--set", "namespace="+ns, "--set", "observability=false", "--set", "bake=0s", "--set", "registry="+cl.Registry.Host+"/shortener", "--set", "insecureRegistry=true",
		"--set", "database=external", "--set-secret", "databaseUrl="+pg.URL, "--set", "cache=external", "--set-secret", "cacheUrl="+rd.URL,
		// The database tools (the backup before a migration) run in the
		// cluster from this image, a mirror as an air-gapped cluster's.
		"--set", "postgresImage="+cl.StandIns(t)["postgresImage"])
	up := []string{"up", "--yes", "--platform", "linux/amd64", "--smoke", "on"}

	// Before any deploy: the commands say so, and change nothing.
	for _, args := range [][]string{{"logs"}, {"exec", "--", "shortener", "version"}, {"secrets", "set", "A=1"}} {
		if r := keep(c.run(args...)); r.code != 9 || !strings.Contains(r.err, "deploy") {
			t.Errorf("liftoff %s before any deploy: exit %d (want 9)\n%s", strings.Join(args, " "), r.code, r.err)
		}
	}

	run(up...)
	d1 := imageOf(t, cl, ns, "blue")
	url := "http://" + clusterIP(t, cl, ns, "shortener")
	waitUntil(t, "the live URL", func() bool { _, err := testenv.Slot(&http.Client{Timeout: time.Second}, url); return err == nil })
	code := shorten(t, url, "https://example.com/day2")

	t.Run("logs", func(t *testing.T) {
		marker := fmt.Sprintf("/no-such-code-%d", time.Now().UnixNano())
		http.Get(url + marker)
		var text, js result
		waitUntil(t, "the request's log line", func() bool {
			text = keep(c.run("logs", "--tail", "200"))
			return strings.Contains(text.out, marker)
		})
		if !regexp.MustCompile(`(?m)^blue  shortener-blue-\S+ \| .*` + regexp.QuoteMeta(marker)).MatchString(text.out) {
			t.Errorf("logs: the line is not prefixed by slot and pod:\n%s", text.out)
		}
		js = run("logs", "--tail", "200", "--json")
		found := false
		var last time.Time
		for _, ev := range validEvents(t, js.out) {
			if ev.Type != "app_log" {
				continue
			}
			at, _ := time.Parse(time.RFC3339Nano, ev.Time)
			if at.Before(last) {
				t.Errorf("logs --json: %s after %s: not in time order", at, last)
			}
			last = at
			fields, _ := ev.Fields()["fields"].(map[string]any)
			if fields["path"] == marker {
				found = ev.Fields()["slot"] == "blue" && ev.Fields()["container"] == "server" && fields["status"] == float64(404)
			}
		}
		if !found {
			t.Errorf("logs --json: no app_log event with the request's fields:\n%s", js.out)
		}
	})

	t.Run("logs -f across a deploy", func(t *testing.T) {
		follow := c.background(t, "logs", "-f")
		c.changeApp()
		run(up...)
		if selector(t, cl, ns) != "green" {
			t.Fatalf("the second up did not flip to green")
		}
		marker := fmt.Sprintf("/after-flip-%d", time.Now().UnixNano())
		waitUntil(t, "green's line in logs -f", func() bool {
			http.Get(url + marker)
			return regexp.MustCompile(`(?m)^green shortener-green-\S+ \| .*` + regexp.QuoteMeta(marker)).MatchString(follow.output())
		})
		if code := follow.interrupt(t); code != 0 {
			t.Errorf("logs -f after SIGINT: exit %d\n%s", code, follow.output())
		}
		keep(result{out: follow.output()})
	})
	d2 := imageOf(t, cl, ns, "green")
	if d2 == d1 {
		t.Fatalf("the app change built the same image %s", d2)
	}
	run("rollback", "--detach")

	t.Run("exec", func(t *testing.T) {
		r := run("exec", "--", "shortener", "migrate")
		if r.code != 0 {
			t.Errorf("exec migrate: %+v", r)
		}
		if r := keep(c.run("exec", "--", "shortener", "printenv", "NOT_SET_ANYWHERE")); r.code != 1 {
			t.Errorf("exec printenv of an unset variable: exit %d, want the command's 1\n%s", r.code, r.err)
		}
		if r := keep(c.run("exec", "--", "no-such-binary")); r.code == 0 {
			t.Errorf("exec of a missing binary: exit 0")
		}
		pod := run("exec", "--", "shortener", "printenv", "SLOT")
		if strings.TrimSpace(pod.out) != "blue" {
			t.Errorf("exec on the live slot ran in slot %q, want blue", pod.out)
		}
		if r := run("exec", "--slot", "green", "--", "shortener", "printenv", "SLOT"); strings.TrimSpace(r.out) != "green" {
			t.Errorf("exec --slot green ran in %q", r.out)
		}
	})

	const value, stdinValue = "s3cr3t-value-8d1f0c", "stdin-secret-77aa21"
	t.Run("secrets", func(t *testing.T) {
		load := testenv.StartLoad(url+"/"+code, 8, func(s int) bool { return s == http.StatusFound })
		defer load.Stop()
		time.Sleep(500 * time.Millisecond)
		before := load.Stats()
		r := run("secrets", "set", "GREETING="+value, "--json")
		time.Sleep(500 * time.Millisecond)
		got := load.Stats().Since(before)
		t.Logf("secrets set under load: %s", got)
		if got.Failed > 0 || got.Total == 0 {
			t.Errorf("secrets set under load: %s", got)
		}
		live := selector(t, cl, ns)
		if live != "green" || imageOf(t, cl, ns, "green") != d1 {
			t.Fatalf("after secrets set: live %s runs %s, want green with the live image %s\n%s", live, imageOf(t, cl, ns, "green"), d1, r.out)
		}
		// (the one place a value may show: the app printing it; not kept for the grep below)
		if out := c.mustRun("exec", "--", "shortener", "printenv", "GREETING").out; strings.TrimSpace(out) != value {
			t.Errorf("the app sees GREETING=%q", strings.TrimSpace(out))
		}
		// From stdin, stored only: the live slot keeps the version it has.
		keep(r)
		r = keep(c.runCtx(ctx, stdinValue+"\n", "secrets", "set", "API_TOKEN", "--no-restart"))
		if r.code != 0 || selector(t, cl, ns) != "green" {
			t.Fatalf("secrets set --no-restart: exit %d, live %s\n%s", r.code, selector(t, cl, ns), r.err)
		}
		if out := keep(c.run("exec", "--", "shortener", "printenv", "API_TOKEN")); out.code != 1 {
			t.Errorf("--no-restart reached the running app: %+v", out)
		}
		ls := run("secrets", "ls")
		for _, want := range []string{"API_TOKEN", "GREETING", "slot green runs version", "(old, live)", "slot blue  runs version -"} {
			if !strings.Contains(ls.out, want) {
				t.Errorf("secrets ls lacks %q:\n%s", want, ls.out)
			}
		}
		// A bad change is refused before anything is stored.
		if r := keep(c.run("secrets", "unset", "NEVER_SET")); r.code != 9 || !strings.Contains(r.err, "NEVER_SET is not set") {
			t.Errorf("unset of an unknown key: exit %d %s", r.code, r.err)
		}
	})

	t.Run("releases", func(t *testing.T) {
		r := run("releases", "--json")
		var data struct {
			Releases []rollout.Record `json:"releases"`
		}
		ev := validEvents(t, r.out)
		b, _ := json.Marshal(ev[len(ev)-1].Data)
		json.Unmarshal(b, &data)
		want := []struct{ action, slot, image string }{
			{"secrets", "green", d1}, {"rollback", "blue", d1}, {"deploy", "green", d2}, {"deploy", "blue", d1}}
		if len(data.Releases) != len(want) {
			t.Fatalf("releases: %d records, want %d:\n%s", len(data.Releases), len(want), r.out)
		}
		for i, w := range want {
			got := data.Releases[i]
			if got.Action != w.action || got.Slot != w.slot || got.Image != w.image || got.Result != "ok" || got.Who == "" ||
				!strings.HasSuffix(w.image, got.Digest) || got.Digest == "" {
				t.Errorf("release %d: %+v, want %s of %s to %s", i, got, w.action, w.image, w.slot)
			}
		}
		if data.Releases[0].Secrets == "" || data.Releases[1].Secrets != "" {
			t.Errorf("secrets versions: %q then %q", data.Releases[0].Secrets, data.Releases[1].Secrets)
		}
		if st := run("status"); !strings.Contains(st.out, "recent") || strings.Count(st.out, " ok\n") < 3 {
			t.Errorf("status does not show the last three releases:\n%s", st.out)
		}
	})

	t.Run("notify", func(t *testing.T) {
		// One message per action, in order, each saying what happened and
		// where; the deploy that flipped says how to go back while blue is warm.
		var msgs []string
		for _, n := range hook.All() {
			msgs = append(msgs, n.Text())
			if n.Path != "/hooks/"+hookToken || n.ContentType != "application/json" {
				t.Errorf("webhook request to %s (%s)", n.Path, n.ContentType)
			}
		}
		want := []string{"shortener (dev): deploy done, slot blue is live", "shortener (dev): deploy done, slot green is live",
			"shortener (dev): rollback done, slot blue is live", "shortener (dev): secrets change done, slot green is live"}
		if len(msgs) != len(want) {
			t.Fatalf("%d messages, want %d:\n%s", len(msgs), len(want), strings.Join(msgs, "\n---\n"))
		}
		t.Logf("the second deploy's announcement:\n%s", msgs[1])
		for i, w := range want {
			if !strings.HasPrefix(msgs[i], w+"\n") || !strings.Contains(msgs[i], "by: ") || !strings.Contains(msgs[i], "took: ") {
				t.Errorf("message %d:\n%s\nwant it to start with %q, with who and how long", i, msgs[i], w)
			}
		}
		if d := strings.TrimPrefix(d2, strings.SplitN(d2, "@", 2)[0]); !strings.Contains(msgs[1], "release: ") || !strings.Contains(msgs[1], d) ||
			!strings.Contains(msgs[1], "slot: green (previously live: blue)") || !strings.Contains(msgs[1], "undo: liftoff rollback --stack dev (instant while slot blue is warm") {
			t.Errorf("the second deploy's message lacks its release %s, its slots or the way back:\n%s", d, msgs[1])
		}
	})

	t.Run("open", func(t *testing.T) {
		o := c.background(t, "open", "--print")
		var local string
		waitUntil(t, "open prints the local URL", func() bool {
			m := regexp.MustCompile(`app: (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(o.output())
			if m != nil {
				local = m[1]
			}
			return local != ""
		})
		if slot, err := testenv.Slot(&http.Client{Timeout: 5 * time.Second}, strings.TrimSuffix(local, "/")); err != nil || slot != "green" {
			t.Errorf("GET %s through liftoff open: slot %q, %v", local, slot, err)
		}
		if code := o.interrupt(t); code != 0 {
			t.Errorf("open after SIGINT: exit %d\n%s", code, o.output())
		}
		if r := keep(c.run("open", "grafana")); r.code != 9 || !strings.Contains(r.err, "observability") {
			t.Errorf("open grafana with observability off: exit %d %s", r.code, r.err)
		}
	})

	// No secret value anywhere liftoff wrote, or in what the cluster shows.
	places := map[string]string{"liftoff's output": printed.String()}
	if cm, err := cl.Client.CoreV1().ConfigMaps(ns).Get(ctx, "shortener-releases", metav1.GetOptions{}); err == nil {
		places["the releases history"] = fmt.Sprint(cm.Data)
	} else {
		t.Errorf("releases ConfigMap: %v", err)
	}
	if evs, err := cl.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		b, _ := json.Marshal(evs)
		places["the namespace's events"] = string(b)
	}
	if pods, err := cl.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		b, _ := json.Marshal(pods)
		places["the pod specs"] = string(b)
	}
	stackFile, _ := os.ReadFile(filepath.Join(c.dir, "Pulumi.dev.yaml"))
	places["the stack file"] = string(stackFile)
	if !strings.Contains(string(stackFile), "appSecrets") {
		t.Errorf("the stack file does not hold the app's secrets:\n%s", stackFile)
	}
	for where, text := range places {
		for _, v := range []string{value, stdinValue, hookToken} {
			if strings.Contains(text, v) {
				t.Errorf("a secret value appears in %s", where)
			}
		}
	}
}

// bg is a liftoff process the test interrupts, like a user pressing Ctrl-C.
type bg struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (c *cli) background(t *testing.T, args ...string) *bg {
	t.Helper()
	b := &bg{cmd: c.process(args...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	b.cmd.Stdout, b.cmd.Stderr = pw, pw
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			b.mu.Lock()
			b.out.WriteString(sc.Text() + "\n")
			b.mu.Unlock()
		}
	}()
	go func() { b.cmd.Wait(); pw.Close(); close(b.done) }()
	t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
	return b
}

func (b *bg) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

// interrupt sends SIGINT and returns the exit code.
func (b *bg) interrupt(t *testing.T) int {
	t.Helper()
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not end within 30s of SIGINT", b.cmd.Args)
	}
	return b.cmd.ProcessState.ExitCode()
}
