// Command demo is `make demo`: it starts a local cluster on this machine (a
// real control plane and a real node, see internal/testenv), then runs the
// built bin/liftoff exactly as a user would, with the kubeconfig target's
// defaults (an in-cluster registry, PostgreSQL and Valkey, created by the
// Pulumi engine): init, up, an app change and up again, a pull request's
// preview and its teardown, destroy. After each up it opens the URL the
// summary printed and uses the app through it.
//
// DEMO_KEEP=1 stops after the first up and keeps everything serving, with
// the shell lines to use the stack from another terminal, until SIGINT or
// SIGTERM; then it tears everything down.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Getenv("DEMO_KEEP") == "1")
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "\ndemo failed:", err)
		os.Exit(1)
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "\ndemo interrupted; everything it started is gone")
		os.Exit(130)
	}
}

// env is the local environment the demo stands the stack up on.
type env struct {
	repo, work, project string
	cluster             *testenv.Cluster
	vars                map[string]string
}

func run(ctx context.Context, keep bool) (err error) {
	repo, err := testenv.Root()
	if err != nil {
		return err
	}
	liftoff := filepath.Join(repo, "bin", "liftoff")
	if _, err := os.Stat(liftoff); err != nil {
		return fmt.Errorf("%s is missing: run make build (make demo does it)", liftoff)
	}
	work, err := os.MkdirTemp("", "liftoff-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	banner("a local cluster: control plane and one real node")
	start := time.Now()
	cl, err := testenv.NewCluster(filepath.Join(work, "cluster"), repo, testenv.ClusterOptions{RealNode: true})
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	defer cl.Close()
	for _, d := range []string{"home", "state", "project"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}
	fmt.Printf("node %s (%s), ready in %s\n", cl.Node.Name, cl.Node.IP, time.Since(start).Round(100*time.Millisecond))
	// The official images of the registry, PostgreSQL and Valkey cannot be
	// pulled here: the demo mirrors stand-ins into the cluster's own
	// registry and points the stack at them, as an air-gapped cluster does.
	mirror, err := cl.PushStandIns(repo)
	if err != nil {
		return err
	}
	// The monitoring stack: its upstream charts from a mirror of the chart
	// repositories (the offline copy, served on loopback), its images from
	// stand-ins in the cluster's registry, the parts this machine cannot run
	// left out (testenv.MonitoringOff).
	observability := []string{"--set", "observability=false"}
	if charts := testenv.ChartsDir(repo); charts == "" {
		fmt.Println("observability off: no copy of the pinned upstream charts (.cache/charts or ../shared/charts), and their repositories cannot be reached from here")
	} else {
		srv := httptest.NewServer(http.FileServer(http.Dir(charts)))
		defer srv.Close()
		images, err := cl.PushMonitoring(repo)
		if err != nil {
			return err
		}
		observability = []string{"--set", "observability=true", "--set", "chartMirror=" + srv.URL, "--set", "observabilityOff=" + testenv.MonitoringOff}
		for k, v := range images {
			observability = append(observability, "--set", k+"="+v)
		}
	}

	e := &env{repo: repo, work: work, project: filepath.Join(work, "project"), cluster: cl}
	pass := filepath.Join(work, "passphrase")
	if err := os.WriteFile(pass, []byte("demo passphrase, kept beside the state\n"), 0o600); err != nil {
		return err
	}
	e.vars = map[string]string{
		"KUBECONFIG": cl.Kubeconfig, "LIFTOFF_HOME": filepath.Join(work, "home"), "LIFTOFF_BACKEND": "file://" + filepath.Join(work, "state"),
		"LIFTOFF_PASSPHRASE_FILE": pass, "LIFTOFF_PULUMI": filepath.Join(repo, ".cache", "bin", "pulumi"),
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
		"PATH": filepath.Join(repo, "bin") + ":" + filepath.Join(repo, ".cache", "bin") + ":" + os.Getenv("PATH"),
	}
	// The user's project: the shortener's module in a git repository of its
	// own (the image records its revision), copied so the demo can change it.
	for _, p := range []string{"go.mod", "go.sum", "app"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(repo, p), e.project).CombinedOutput(); err != nil {
			return fmt.Errorf("copy %s: %v %s", p, err, out)
		}
	}
	if err := e.commit("the shortener"); err != nil {
		return err
	}
	platform := "linux/" + runtime.GOARCH
	up := []string{"up", "--yes", "--platform", platform, "--smoke", "on"}

	banner("liftoff init (the kubeconfig target's defaults: registry, PostgreSQL and Valkey in the cluster)")
	initArgs := []string{"init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context,
		"--set", "namespace=shop", "--set", "bake=15s"} // each release is judged by 15 s of the demo's traffic
	initArgs = append(initArgs, observability...)
	for _, k := range []string{"registryImage", "postgresImage", "valkeyImage"} {
		initArgs = append(initArgs, "--set", k+"="+mirror[k])
	}
	if _, err := e.liftoff(ctx, initArgs...); err != nil {
		return err
	}

	banner("liftoff up (first)")
	out, err := e.liftoff(ctx, up...)
	if err != nil {
		return err
	}
	url, err := summaryURL(out)
	if err != nil {
		return err
	}
	if err := useApp(ctx, url, liveSlot(out)); err != nil {
		return err
	}
	if observability[1] == "observability=true" {
		if err := e.monitoring(ctx); err != nil {
			return err
		}
	}
	if keep {
		return e.serve(ctx, url)
	}

	banner("change the app (GET / reports an edition), liftoff up (second), under traffic: the bake judges the new release by it")
	// Four clients on new connections, as many users each asking once.
	traffic := testenv.StartFreshLoad(url+"/", 4, func(s int) bool { return s == http.StatusOK })
	api := filepath.Join(e.project, "app", "api", "api.go")
	b, err := os.ReadFile(api)
	if err != nil {
		return err
	}
	changed := strings.Replace(string(b), `"service": "shortener"`, `"service": "shortener", "edition": "2"`, 1)
	if changed == string(b) {
		return errors.New("the app change did not apply: app/api/api.go has no root info map")
	}
	if err := os.WriteFile(api, []byte(changed), 0o644); err != nil {
		return err
	}
	if err := e.commit("GET / reports the edition"); err != nil {
		return err
	}
	if out, err = e.liftoff(ctx, up...); err != nil {
		traffic.Stop()
		return err
	}
	if !strings.Contains(out, "passed:") {
		traffic.Stop()
		return errors.New("the second up's release was not judged by its traffic (no passed bake in its summary)")
	}
	if url, err = summaryURL(out); err != nil {
		traffic.Stop()
		return err
	}
	if err := useApp(ctx, url, liveSlot(out)); err != nil {
		return err
	}

	banner("day 2: up with nothing to do, a secret set blue-green, the history, the logs")
	if out, err = e.liftoff(ctx, up...); err != nil {
		return err
	}
	if !strings.Contains(out, "already serves") {
		return errors.New("an up with nothing changed deployed anyway")
	}
	_, err = e.liftoff(ctx, "secrets", "set", "GREETING=hello-from-the-demo")
	st := traffic.Stop()
	fmt.Printf("\n--- traffic during the second up and the secrets change (two flips, each baked): %s\n", st)
	if err != nil {
		return err
	}
	if st.Failed > 0 {
		return fmt.Errorf("%d of %d requests failed across the flips", st.Failed, st.Total)
	}
	if out, err = e.liftoff(ctx, "exec", "--", "shortener", "printenv", "GREETING"); err != nil {
		return err
	}
	if strings.TrimSpace(out) != "hello-from-the-demo" {
		return fmt.Errorf("the live slot sees GREETING=%q after secrets set", strings.TrimSpace(out))
	}
	for _, args := range [][]string{{"releases"}, {"logs", "--tail", "3"}} {
		if _, err := e.liftoff(ctx, args...); err != nil {
			return err
		}
	}

	banner("a pull request's preview: liftoff up -s pr-42 --preview-of dev")
	if _, err := e.liftoff(ctx, "init", "-s", "pr-42", "--target", "kubeconfig", "--preview-of", "dev"); err != nil {
		return err
	}
	if out, err = e.liftoff(ctx, append([]string{"up", "-s", "pr-42", "--preview-of", "dev", "--ttl", "2h"}, up[1:]...)...); err != nil {
		return err
	}
	previewURL, err := summaryURL(out)
	if err != nil {
		return err
	}
	if err := useApp(ctx, previewURL, liveSlot(out)); err != nil {
		return err
	}
	banner("the pull request is closed: liftoff destroy -s pr-42")
	if _, err := e.liftoff(ctx, "destroy", "-s", "pr-42", "--yes"); err != nil {
		return err
	}

	banner("liftoff destroy")
	if _, err := e.liftoff(ctx, "destroy", "--yes"); err != nil {
		return err
	}
	banner("done: the demo's cluster and its node stop now, leaving nothing behind")
	return nil
}

// liftoff runs bin/liftoff in the project as a user would, showing its
// output, and returns what it printed on stdout.
func (e *env) liftoff(ctx context.Context, args ...string) (string, error) {
	fmt.Printf("$ liftoff %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, filepath.Join(e.repo, "bin", "liftoff"), args...)
	cmd.Dir = e.project
	cmd.Env = os.Environ()
	for k, v := range e.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(os.Stdout, &out)
	cmd.Stderr = os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // liftoff stops at a safe point
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return out.String(), ctx.Err()
		}
		return out.String(), fmt.Errorf("liftoff %s: %w", args[0], err)
	}
	return out.String(), nil
}

// commit records the project's state, as a user commits before shipping.
func (e *env) commit(msg string) error {
	for _, argv := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=demo", "-c", "user.email=demo@localhost", "commit", "-qm", msg}} {
		if argv[0] == "init" {
			if _, err := os.Stat(filepath.Join(e.project, ".git")); err == nil {
				continue
			}
		}
		cmd := exec.Command("git", argv...)
		cmd.Dir = e.project
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v %s", argv[0], err, out)
		}
	}
	return nil
}

var (
	urlLine  = regexp.MustCompile(`(?m)^\s+url\s+(http\S+)`)
	slotLine = regexp.MustCompile(`(?m)^\s+live_slot\s+(\S+)`)
)

func liveSlot(out string) string {
	if m := slotLine.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// summaryURL is the url line of up's summary.
func summaryURL(out string) (string, error) {
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		return "", errors.New("up's summary has no url line")
	}
	return m[1], nil
}

// useApp does what a first visitor does through the live URL: see which
// release answers (waiting, after a flip, until the cluster's proxies send
// new connections to the live slot), sign up, shorten a link, follow it,
// read its click.
func useApp(ctx context.Context, base, live string) error {
	fmt.Printf("\n--- using the app at %s\n", base)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, path string, body any) (int, http.Header, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, nil, nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %s -> %d %s\n", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
		return resp.StatusCode, resp.Header, b, nil
	}
	start := time.Now()
	var slot string
	var err error
	for time.Since(start) < 15*time.Second {
		if slot, err = testenv.Slot(client, base); err == nil && slot == live {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || slot != live {
		return fmt.Errorf("the live URL does not answer from slot %s: slot %q, %v", live, slot, err)
	}
	fmt.Printf("new connections reach slot %s (%s after the summary)\n", live, time.Since(start).Round(10*time.Millisecond))
	if _, _, _, err := call("GET", "/", nil); err != nil {
		return err
	}
	name := fmt.Sprintf("founder%d", time.Now().Unix()%100000)
	code, _, b, err := call("POST", "/users", map[string]string{"username": name, "email": name + "@example.com"})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("POST /users: %d %v", code, err)
	}
	var user struct{ ID int64 }
	json.Unmarshal(b, &user)
	code, _, b, err = call("POST", "/urls", map[string]any{"user_id": user.ID, "original_url": "https://go.dev/doc/", "title": "Go docs"})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("POST /urls: %d %v", code, err)
	}
	var link struct {
		ID        int64  `json:"id"`
		ShortCode string `json:"short_code"`
	}
	json.Unmarshal(b, &link)
	code, hdr, _, err := call("GET", "/"+link.ShortCode, nil)
	if err != nil || code != http.StatusFound || hdr.Get("Location") != "https://go.dev/doc/" {
		return fmt.Errorf("GET /%s: %d %v, Location %q", link.ShortCode, code, err, hdr.Get("Location"))
	}
	fmt.Printf("    redirects to %s\n", hdr.Get("Location"))
	// Each replica writes its own clicks first when read; another replica's
	// batch lands within its flush interval.
	for range 20 {
		_, _, b, err = call("GET", fmt.Sprintf("/events?url_id=%d", link.ID), nil)
		if err == nil && bytes.Contains(b, []byte(`"click"`)) {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("GET /events?url_id=%d never showed the click", link.ID)
}

// serve keeps the stack serving for a person to use, then tears it down.
func (e *env) serve(ctx context.Context, url string) error {
	banner("DEMO_KEEP=1: the stack keeps serving until Ctrl-C (SIGINT) or SIGTERM")
	fmt.Printf("live URL:  %s\nproject:   %s\n\nFrom another terminal:\n", url, e.project)
	for _, k := range []string{"KUBECONFIG", "LIFTOFF_HOME", "LIFTOFF_BACKEND", "LIFTOFF_PASSPHRASE_FILE", "LIFTOFF_PULUMI", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "PATH"} {
		fmt.Printf("  export %s=%q\n", k, e.vars[k])
	}
	fmt.Printf("  cd %s\n  liftoff status\n  curl -i %s/\n  liftoff open prometheus\n  liftoff open alertmanager\n", e.project, url)
	<-ctx.Done()
	banner("tearing down: liftoff destroy, then the cluster")
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.liftoff(dctx, "destroy", "--yes"); err != nil {
		fmt.Fprintln(os.Stderr, "destroy:", err)
	}
	return nil
}

// monitoring opens Prometheus and Alertmanager as a user does (liftoff
// open, a port-forward held until stopped) and shows what they hold: the
// app's pods scraped by slot, the shortener's rules, the alerts.
func (e *env) monitoring(ctx context.Context) error {
	banner("the monitoring stack: liftoff open prometheus, liftoff open alertmanager")
	get := func(what, path string, into any, ready func() bool) error {
		octx, cancel := context.WithCancel(ctx)
		defer cancel()
		cmd := exec.CommandContext(octx, filepath.Join(e.repo, "bin", "liftoff"), "open", what, "--print")
		cmd.Dir, cmd.Env, cmd.Stderr = e.project, os.Environ(), os.Stderr
		for k, v := range e.vars {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 10 * time.Second
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { cancel(); cmd.Wait() }() // Ctrl-C ends the forward
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			return fmt.Errorf("liftoff open %s printed no URL: %w", what, err)
		}
		fmt.Printf("$ liftoff open %s --print\n%s", what, line)
		base := strings.TrimSpace(strings.TrimPrefix(line, what+":"))
		url, start := strings.TrimSuffix(base, "/")+path, time.Now()
		for {
			err := getJSON(ctx, url, into)
			if err == nil && ready() {
				fmt.Printf("  (%s answered in %s)\n", what, time.Since(start).Round(time.Second))
				return nil
			}
			if err == nil {
				err = errors.New("not there yet")
			}
			if time.Since(start) > 3*time.Minute { // a fresh Prometheus finds the app's pods within a minute or two
				return fmt.Errorf("%s: %w", url, err)
			}
			time.Sleep(2 * time.Second)
		}
	}
	var up struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := get("prometheus", "/api/v1/query?query="+neturl.QueryEscape(`up{slot!=""} == 1`), &up, func() bool { return len(up.Data.Result) > 0 }); err != nil {
		return fmt.Errorf("Prometheus scrapes no pod of the app: %w", err)
	}
	for _, r := range up.Data.Result {
		fmt.Printf("  scraped: %s %s slot=%s\n", r.Metric["namespace"], r.Metric["pod"], r.Metric["slot"])
	}
	type alert struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	var alerts []alert
	// Watchdog, always firing, proves Prometheus reaches Alertmanager.
	watchdog := func() bool {
		return slices.ContainsFunc(alerts, func(a alert) bool { return a.Labels["alertname"] == "Watchdog" })
	}
	if err := get("alertmanager", "/api/v2/alerts", &alerts, watchdog); err != nil {
		return err
	}
	for _, a := range alerts {
		fmt.Printf("  alert in Alertmanager: %s (%s)\n", a.Labels["alertname"], a.Status.State)
	}
	return nil
}

// getJSON decodes a 200 answer of url into v.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func banner(s string) { fmt.Printf("\n=== %s\n", s) }
