package observability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"sigs.k8s.io/yaml"

	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/internal/notify"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// Test scale of the rules' windows: every `for:` and range window is
// divided by about this much, the expressions' logic and thresholds stay.
var (
	testFor    = map[string]string{"2m": "4s", "5m": "6s", "10m": "8s"}
	testWindow = "[15s]"
)

// scaledRules is the PrometheusRule spec the component declares (Rules()),
// with the test's windows.
func scaledRules(t *testing.T) []byte {
	t.Helper()
	spec, err := Rules()
	if err != nil {
		t.Fatal(err)
	}
	groups := spec["groups"].([]any)
	for _, g := range groups {
		g.(map[string]any)["interval"] = "1s"
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			if f, ok := testFor[fmt.Sprint(rule["for"])]; ok {
				rule["for"] = f
			} else {
				t.Fatalf("%v: for %v has no test scale", rule["alert"], rule["for"])
			}
			rule["expr"] = regexp.MustCompile(`\[5m\]`).ReplaceAllString(rule["expr"].(string), testWindow)
		}
	}
	b, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// server is a command the test runs in a temp dir, stopped at the end.
func server(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(testenv.Command(t, name, map[string]string{"prometheus": "prometheus", "prometheus-alertmanager": "prometheus-alertmanager"}[name]), args...)
	log, _ := os.Create(filepath.Join(t.TempDir(), name+".log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s log (last 2000 bytes):\n%s", name, tail(string(b), 2000))
		}
	})
	return cmd
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitHTTP(t *testing.T, what, u string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %s within 60s", what, u)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// app is the shortener serving on a fixed address, stoppable and restartable.
type app struct {
	t    *testing.T
	addr string
	h    http.Handler
	srv  *http.Server
}

func (a *app) start() {
	ln, err := net.Listen("tcp", a.addr)
	for i := 0; err != nil && i < 50; i++ { // the old listener's port may still be closing
		time.Sleep(100 * time.Millisecond)
		ln, err = net.Listen("tcp", a.addr)
	}
	if err != nil {
		a.t.Fatal(err)
	}
	a.srv = &http.Server{Handler: a.h}
	go a.srv.Serve(ln)
}

func (a *app) stop() { a.srv.Close() }

// load sends requests to paths until stopped, counting answers by class.
type load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	ok, xx atomic.Int64
}

func startLoad(base string, paths []string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := w; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				res, err := c.Get(base + paths[i%len(paths)])
				if err != nil {
					l.xx.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode >= 500 {
					l.xx.Add(1)
				} else {
					l.ok.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) end() { close(l.stop); l.wg.Wait() }

// TestAlertsEndToEnd runs the shipped alerts for real: Prometheus (Debian)
// scrapes the shortener (real PostgreSQL and Redis) and evaluates exactly
// the component's rule groups, with the test's windows; three Alertmanagers
// run the configuration liftoff renders for Slack, Discord and email,
// pointed at local sinks. Each fault fires its alert, each fix resolves it,
// and every receiver gets both in its own format, with the runbook link.
// Then every dashboard and rule expression must return data, and every
// label they use must exist.
func TestAlertsEndToEnd(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: pg.URL, CacheURL: rd.URL, Version: "e2e", Slot: "blue",
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Events: events.Options{Capacity: 200, MaxBatch: 50}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(nil, 0, 10*time.Second)
	// One listener for the test: the API and, as the pod's metrics port
	// serves it, /metrics.
	mux := http.NewServeMux()
	mux.Handle("/", svc.Handler())
	mux.Handle("GET /metrics", svc.API.MetricsHandler())
	a := &app{t: t, addr: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), h: mux}
	a.start()
	defer a.stop()
	base := "http://" + a.addr
	// A user, a link, and the link in the cache (its redirect needs no database).
	res, err := http.Post(base+"/users", "application/json", strings.NewReader(`{"username":"alerts","email":"alerts@x.io"}`))
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("create user: %v %v", err, res)
	}
	res, _ = http.Post(base+"/urls", "application/json", strings.NewReader(`{"user_id":1,"original_url":"https://example.com/a"}`))
	b, _ := io.ReadAll(res.Body)
	m := regexp.MustCompile(`"short_code":"([^"]+)"`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("create url: %s", b)
	}
	code := m[1]

	s := testenv.StartSinks(t)
	dir := t.TempDir()
	var ams []string
	for _, recv := range []struct{ kind, dest string }{
		{"slack", "slack+" + s.HTTP + "/slack"},
		{"discord", "discord+" + s.HTTP + "/discord"},
		{"email", "mailto:ops@acme.dev?smarthost=" + s.SMTP + "&from=alerts@acme.dev&require_tls=false"},
	} {
		d, err := notify.Parse(recv.dest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := AlertmanagerConfig(d)
		if err != nil {
			t.Fatal(err)
		}
		route := cfg["route"].(map[string]any) // the route's timings, scaled like the rules
		route["group_wait"], route["group_interval"] = "1s", "2s"
		y, _ := yaml.Marshal(cfg)
		path := filepath.Join(dir, recv.kind+".yml")
		os.WriteFile(path, y, 0o600)
		if out, err := exec.Command(testenv.Command(t, "amtool", "prometheus-alertmanager"), "check-config", path).CombinedOutput(); err != nil {
			t.Fatalf("amtool check-config %s: %v\n%s", recv.kind, err, out)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		server(t, "prometheus-alertmanager", "--config.file="+path, "--storage.path="+filepath.Join(dir, recv.kind+"-data"),
			"--web.listen-address="+addr, "--cluster.listen-address=")
		waitHTTP(t, "alertmanager "+recv.kind, "http://"+addr+"/-/ready")
		ams = append(ams, addr)
	}
	os.WriteFile(filepath.Join(dir, "rules.yml"), scaledRules(t), 0o644)
	if out, err := exec.Command(testenv.Command(t, "promtool", "prometheus"), "check", "rules", filepath.Join(dir, "rules.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (scaled): %v\n%s", err, out)
	}
	promCfg, _ := yaml.Marshal(map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []any{filepath.Join(dir, "rules.yml")},
		"alerting":   map[string]any{"alertmanagers": []any{map[string]any{"static_configs": []any{map[string]any{"targets": ams}}}}},
		"scrape_configs": []any{map[string]any{"job_name": "shortener-blue-metrics", "scrape_timeout": "900ms",
			"static_configs": []any{map[string]any{"targets": []any{a.addr}, "labels": map[string]any{"namespace": "shop", "pod": "shortener-blue-0",
				// What the chart's ServiceMonitor adds to a slot's series: its release.
				"slot": "blue", "release_digest": "sha256:c0ffee", "released_by": "ci:7", "released_at": "2026-12-03T10:00:00Z"}}}}},
	})
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), promCfg, 0o644)
	prom := fmt.Sprintf("http://127.0.0.1:%d", testenv.FreePort(t))
	server(t, "prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+strings.TrimPrefix(prom, "http://"))
	waitHTTP(t, "prometheus", prom+"/-/ready")
	waitFor(t, "the shortener scraped", 30*time.Second, func() bool { return len(query(t, prom, `up{job="shortener-blue-metrics"} == 1`)) == 1 })

	figures := map[string]string{}
	// expect waits until every receiver got alert in state (firing or resolved) after since.
	expect := func(alert, state string, since time.Time) time.Duration {
		t.Helper()
		var last time.Time
		for _, r := range []string{"slack", "discord", "email"} {
			want := []string{alert, "runbooks/" + alert + ".md"}
			switch {
			case r == "slack": // attachments: the title template and text with the runbook and the last release
				want = append(want, `"attachments"`, alert+" ("+state+")", "(last release: sha256:c0ffee (slot blue in shop) by ci:7 at 2026-12-03T10:00:00Z)")
			case r == "discord": // embeds titled by the default subject
				want = append(want, `"embeds"`, "["+strings.ToUpper(state))
			case r == "email": // a subject and a body
				want = append(want, "Subject: ["+strings.ToUpper(state), "To: ops@acme.dev")
			}
			var n *testenv.Notification
			waitFor(t, fmt.Sprintf("%s %s at %s", alert, state, r), 3*time.Minute, func() bool { n = s.Find(r, since, want...); return n != nil })
			if n.At.After(last) {
				last = n.At
			}
		}
		return last.Sub(since)
	}
	phase := func(alert string, fault func() (fix func())) {
		t.Helper()
		start := time.Now()
		fix := fault()
		fired := expect(alert, "firing", start)
		fixed := time.Now()
		fix()
		resolved := expect(alert, "resolved", fixed)
		figures[alert] = fmt.Sprintf("fault to firing %s, fix to resolved %s (all three receivers)", fired.Round(100*time.Millisecond), resolved.Round(100*time.Millisecond))
		t.Logf("%s: %s", alert, figures[alert])
	}

	// Background traffic on every route kind, so rates exist before the faults.
	warm := startLoad(base, []string{"/" + code, "/users/1", "/urls", "/nope"}, 2)
	time.Sleep(3 * time.Second)
	warm.end()

	phase("ShortenerDown", func() func() {
		a.stop()
		return a.start
	})
	phase("HighErrorRate", func() func() {
		l := startLoad(base, []string{"/users/1", "/urls/1"}, 4)
		pg.Stop()
		return func() {
			if err := pg.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the database back", 30*time.Second, func() bool {
				r, err := http.Get(base + "/users/1")
				if err == nil {
					r.Body.Close()
				}
				return err == nil && r.StatusCode == 200
			})
			// Good answers only until the alert resolves: the window forgets the 5xx.
			go func() { time.Sleep(40 * time.Second); l.end() }()
		}
	})
	phase("HighLatencyP99", func() func() {
		l := startLoad(base, []string{"/users/1"}, 4)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { // the table the route reads, locked for 600 ms at a time
			defer close(done)
			conn, err := pgx.Connect(context.Background(), pg.URL)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close(context.Background())
			for {
				select {
				case <-stop:
					return
				default:
				}
				tx, err := conn.Begin(context.Background())
				if err == nil {
					tx.Exec(context.Background(), "LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
					time.Sleep(600 * time.Millisecond)
					tx.Rollback(context.Background())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		return func() {
			close(stop)
			<-done
			go func() { time.Sleep(40 * time.Second); l.end() }()
		}
	})
	phase("EventBufferBacklog", func() func() {
		l := startLoad(base, []string{"/" + code}, 8)
		pg.Stop()
		return func() {
			if err := pg.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { time.Sleep(40 * time.Second); l.end() }()
		}
	})

	// Every expression of the rules and the dashboard returns data now.
	type panelExpr struct{ panel, expr string }
	var exprs []panelExpr
	dash, err := testenv.ParseDashboard(Dashboard(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range dash.Queries {
		exprs = append(exprs, panelExpr{"dashboard panel " + q.Panel, q.Expr})
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	yaml.Unmarshal(scaledRules(t), &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if !strings.Contains(r.Expr, "kube_") { // kube-state-metrics: promtool unit tests only (shortener.rules.test.yaml)
				exprs = append(exprs, panelExpr{"rule " + r.Alert, withoutThreshold(r.Expr)})
			}
		}
	}
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions found", len(exprs))
	}
	for _, e := range exprs {
		if series := query(t, prom, e.expr); len(series) == 0 {
			t.Errorf("%s returns no series after the load: %s (waiting for %v)", e.panel, e.expr, metricRE.FindAllString(e.expr, -1))
		}
	}
	// Every label the rules and the dashboard group or match by exists on a series.
	labelRE := regexp.MustCompile(`(?:by|without)\s*\(([^)]*)\)|[{,]\s*([a-z_]+)\s*(?:=~|!=|!~|=)`)
	labels := map[string]bool{}
	for _, e := range exprs {
		for _, m := range labelRE.FindAllStringSubmatch(e.expr, -1) {
			for _, l := range strings.Split(m[1]+","+m[2], ",") {
				if l = strings.TrimSpace(l); l != "" && l != "le" && l != "__name__" {
					labels[l] = true
				}
			}
		}
	}
	for l := range labels {
		if len(query(t, prom, fmt.Sprintf(`count by (%s) ({__name__=~"shortener_.+|process_.+|go_.+|up", %s!=""})`, l, l))) == 0 {
			t.Errorf("label %s is used by the rules or the dashboard but no series carries it", l)
		}
	}
	for _, alert := range []string{"ShortenerDown", "HighErrorRate", "HighLatencyP99", "EventBufferBacklog"} {
		fmt.Printf("alert figures: %-20s %s\n", alert, figures[alert])
	}
}

// withoutThreshold drops the comparisons of an alert expression (the part
// that turns a quantity into "firing"), so it returns the quantity itself.
func withoutThreshold(expr string) string {
	expr = regexp.MustCompile(`(?s)\)\s*(==|>|<)\s*[0-9.]+`).ReplaceAllString(expr, ")")
	expr = regexp.MustCompile(`(?s)\s+(and|or)\s+.*$`).ReplaceAllString(strings.TrimSpace(expr), "")
	return strings.TrimSpace(expr)
}

func query(t *testing.T, prom, expr string) []any {
	t.Helper()
	res, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		Status, Error string
		Data          struct{ Result []any }
	}
	json.NewDecoder(res.Body).Decode(&r)
	if r.Status != "success" {
		t.Fatalf("query %s: %s", expr, r.Error)
	}
	return r.Data.Result
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
