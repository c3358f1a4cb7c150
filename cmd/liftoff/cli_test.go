package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// cli runs liftoff commands in one project directory against a temp backend.
type cli struct {
	// clock is the CLI's time (tests move it to make a preview expire).
	clock func() time.Time
	t     *testing.T
	dir   string
	home  string
	env   map[string]string
	// targets, when set, replace stacks.Targets (a test's own target).
	targets *target.Registry
}

func newCLI(t *testing.T) *cli {
	c := &cli{t: t, dir: t.TempDir(), home: t.TempDir(), env: map[string]string{}, clock: time.Now}
	c.env["LIFTOFF_HOME"] = c.home
	c.env["LIFTOFF_PASSPHRASE"] = "test passphrase"
	return c
}

func (c *cli) withEngine() *cli {
	c.env["LIFTOFF_PULUMI"] = testenv.Pulumi(c.t)
	return c
}

type result struct {
	code     int
	out, err string
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	return c.runCtx(context.Background(), "", args...)
}

func (c *cli) runCtx(ctx context.Context, stdin string, args ...string) result {
	c.t.Helper()
	s, in, out, errOut := ui.Test()
	in.WriteString(stdin)
	f := &Factory{IO: s, Getenv: func(k string) string { return c.env[k] }, Now: c.clock, Targets: c.targets}
	code := run(ctx, append([]string{"--cwd", c.dir}, args...), f)
	return result{code, out.String(), errOut.String()}
}

func (c *cli) mustRun(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("liftoff %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r
}

// defaultRollout is what the rollout flags of up, deploy and secrets hold
// when none is given.
var defaultRollout = rollout.DeployOptions{Smoke: rollout.SmokeAuto, ReadyTimeout: rollout.DefaultReadyTimeout}

// TestFlagParsing checks each command's flags land in its options struct.
func TestFlagParsing(t *testing.T) {
	s, _, _, _ := ui.Test()
	f := &Factory{IO: s, Getenv: func(string) string { return "" }, Now: time.Now}
	cases := []struct {
		args []string
		want any
	}{
		{[]string{"up", "--lock-wait", "5m", "--skip-infra", "--image", "r.io/a@sha256:x", "--smoke", "on", "--platform", "linux/arm64"},
			&UpOptions{f: f, LockWait: 5 * time.Minute, SkipInfra: true, Platforms: []string{"linux/arm64"}, Refresh: true,
				Rollout: rollout.DeployOptions{Image: "r.io/a@sha256:x", Smoke: "on", ReadyTimeout: 5 * time.Minute}}},
		{[]string{"destroy", "--keep-state", "--lock-wait", "1m", "--force"}, &DestroyOptions{f: f, LockWait: time.Minute, KeepState: true, Force: true, Wait: 10 * time.Minute}},
		{[]string{"destroy", "--wait", "90s"}, &DestroyOptions{f: f, Wait: 90 * time.Second}},
		{[]string{"init", "--target", "homelab", "--node", "server:root@10.0.0.1", "--node", "agent:pi@10.0.0.2:2222", "--ssh-key", "~/.ssh/k", "--set", "replicas=3"},
			&InitOptions{f: f, Target: "homelab", TargetFlags: target.FlagValues{"node": {"server:root@10.0.0.1", "agent:pi@10.0.0.2:2222"}, "ssh-key": {"~/.ssh/k"}}, Set: []string{"replicas=3"}}},
		{[]string{"config", "set", "--secret", "databaseUrl"}, &ConfigSetOptions{f: f, Key: "databaseUrl", Secret: true}},
		{[]string{"config", "set", "--path", "nodes[0].host", "10.0.0.9"}, &ConfigSetOptions{f: f, Key: "nodes[0].host", Value: "10.0.0.9", HasVal: true, Path: true}},
		{[]string{"config", "get", "replicas", "--show-secrets"}, &ConfigGetOptions{f: f, Key: "replicas", ShowSecrets: true}},
		{[]string{"config", "rm", "replicas"}, &ConfigRmOptions{f: f, Key: "replicas"}},
		{[]string{"preview"}, &PreviewOptions{f: f, Refresh: true}},
		{[]string{"preview", "--refresh=false"}, &PreviewOptions{f: f}},
		{[]string{"deploy", "--image", "r.io/a@sha256:x", "--kubeconfig", "/k", "--context", "c", "--namespace", "ns", "--no-promote", "--lock-wait", "2m", "--smoke", "off",
			"--ready-timeout", "30s", "--scale-down-delay", "10s", "--bake", "30s", "--steps", "10,50,100"},
			&DeployOptions{f: f, Cluster: ClusterFlags{Kubeconfig: "/k", Context: "c", Namespace: "ns"}, LockWait: 2 * time.Minute, ScaleDownDelay: 10 * time.Second, ScaleDownSet: true,
				Bake: 30 * time.Second, BakeSet: true, Steps: "10,50,100",
				Rollout: rollout.DeployOptions{Image: "r.io/a@sha256:x", NoPromote: true, Smoke: "off", ReadyTimeout: 30 * time.Second}}},
		{[]string{"deploy", "--scale-down-delay", "0"}, &DeployOptions{f: f, ScaleDownSet: true, Bake: config.DefaultBake, Rollout: defaultRollout}},
		{[]string{"rollback", "--detach=false", "--app", "web"}, &RolloutOptions{f: f, Cluster: ClusterFlags{App: "web"}}},
		{[]string{"build", "--repo", "r.io/app", "--platform", "linux/arm64", "--base-image", "b", "--insecure-registry", "--oci-layout", "/o", "--package", "./x"},
			&BuildOptions{f: f, Repo: "r.io/app", Platforms: []string{"linux/arm64"}, BaseImage: "b", InsecureRegistry: true, OCILayout: "/o", Package: "./x"}},
		{[]string{"status", "--show-secrets"}, &StatusOptions{f: f, ShowSecrets: true}},
		{[]string{"stacks", "ls"}, &StacksLsOptions{f: f}},
		{[]string{"cancel"}, &CancelOptions{f: f}},
		{[]string{"doctor"}, &DoctorOptions{f: f}},
		{[]string{"stacks", "gc", "--dry-run", "--force"}, &StacksGCOptions{f: f, DryRun: true, Force: true}},
		{[]string{"kubeconfig", "--merge", "--set-current", "--kubeconfig", "/k"}, &KubeconfigOptions{f: f, Merge: true, SetCurrent: true, Path: "/k"}},
		{[]string{"up", "--accept-new-host-keys"}, &UpOptions{f: f, TargetFlags: target.FlagValues{"accept-new-host-keys": {"true"}}, Refresh: true, Rollout: defaultRollout}},
		{[]string{"promote", "--lock-wait", "1m", "--namespace", "shop"}, &RolloutOptions{f: f, Cluster: ClusterFlags{Namespace: "shop"}, Detach: true, LockWait: time.Minute}},
		{[]string{"up", "--preview-of", "prod", "--ttl", "48h"}, &UpOptions{f: f, PreviewOf: "prod", TTL: "48h", Refresh: true, Rollout: defaultRollout}},
		{[]string{"logs"}, &LogsOptions{f: f, Slot: "live", Tail: 100}},
		{[]string{"logs", "--slot", "all", "-f", "--since", "10m", "--tail", "5", "--app", "web"},
			&LogsOptions{f: f, Cluster: ClusterFlags{App: "web"}, Slot: "all", Follow: true, Since: 10 * time.Minute, Tail: 5}},
		{[]string{"exec", "--slot", "preview", "--", "shortener", "migrate", "--dry"}, &ExecOptions{f: f, Slot: "preview", Command: []string{"shortener", "migrate", "--dry"}}},
		{[]string{"exec", "--pod", "p-1", "--", "ls"}, &ExecOptions{f: f, Slot: "live", Pod: "p-1", Command: []string{"ls"}}},
		{[]string{"releases", "-n", "3"}, &ReleasesOptions{f: f, N: 3}},
		{[]string{"releases"}, &ReleasesOptions{f: f, N: 20}},
		{[]string{"open"}, &OpenOptions{f: f, What: "app"}},
		{[]string{"open", "grafana", "--print"}, &OpenOptions{f: f, What: "grafana", Print: true}},
		{[]string{"secrets", "set", "A=1", "B=x=y", "--no-restart", "--lock-wait", "1m"},
			&SecretsSetOptions{f: f, Set: map[string]string{"A": "1", "B": "x=y"}, NoRestart: true, LockWait: time.Minute, Rollout: defaultRollout}},
		{[]string{"secrets", "set", "TOKEN"}, &SecretsSetOptions{f: f, Set: map[string]string{}, FromStdin: "TOKEN", Rollout: defaultRollout}},
		{[]string{"secrets", "unset", "A", "B", "--smoke", "off"}, &SecretsSetOptions{f: f, Unset: []string{"A", "B"}, Rollout: rollout.DeployOptions{Smoke: "off", ReadyTimeout: 5 * time.Minute}}},
		{[]string{"secrets", "ls"}, &SecretsLsOptions{f: f}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args[:1], " "), func(t *testing.T) {
			var got any
			root := NewCmdRoot(f)
			capture := func(o any) error { got = o; return nil }
			for _, cmd := range allCommands(root) {
				replaceRun(cmd, f, capture)
			}
			root.SetArgs(c.args)
			if err := root.Execute(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("liftoff %s\n got %+v\nwant %+v", strings.Join(c.args, " "), got, c.want)
			}
		})
	}
}

func TestGlobalFlags(t *testing.T) {
	s, _, _, _ := ui.Test()
	f := &Factory{IO: s, Getenv: func(string) string { return "" }, Now: time.Now}
	root := NewCmdRoot(f)
	replaceRun(findCmd(root, "status"), f, func(any) error { return nil })
	root.SetArgs([]string{"status", "-s", "pr-42", "--cwd", "/p", "--json", "--yes", "-v", "--backend", "s3://b", "--secrets-provider", "awskms://alias/x"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	want := GlobalOptions{Stack: "pr-42", Cwd: "/p", JSON: true, Yes: true, Verbose: true, Backend: "s3://b", SecretsProvider: "awskms://alias/x"}
	if f.Global != want {
		t.Errorf("got %+v", f.Global)
	}
}

func TestExitCodes(t *testing.T) {
	c := newCLI(t)
	kc := kubeconfigFile(t)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"nope"}, 2, "unknown command"},
		{[]string{"up", "--bogus"}, 2, "unknown flag"},
		{[]string{"up", "--skip-infra", "--infra-only"}, 2, "exclude each other"},
		{[]string{"up"}, 2, "no stack"},
		{[]string{"status", "-s", "prod"}, 9, "run liftoff init --stack prod"},
		{[]string{"init", "--target", "gcp"}, 2, "target"},
		{[]string{"init"}, 2, "--target"},
		{[]string{"init", "--target", "aws"}, 2, "aws:region"},
		{[]string{"init", "--target", "homelab", "--node", "master:10.0.0.1"}, 2, "ROLE:USER@HOST"},
		{[]string{"init", "--target", "kubeconfig", "--region", "eu-west-1"}, 2, "--region applies to aws stacks only"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", kc, "--set", "replicas=0"}, 2, "replicas"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", "/nonexistent"}, 2, "/nonexistent does not exist"},
		{[]string{"config", "get", "-s", "dev"}, 9, "init"},
		{[]string{"version", "extra"}, 2, "takes 0 argument"},
		{[]string{"kubeconfig", "--set-current"}, 2, "needs --merge"},
		{[]string{"kubeconfig", "-s", "prod"}, 9, "init"},
		{[]string{"eks-token"}, 2, "--cluster is required"},
		{[]string{"logs", "--slot", "purple"}, 2, `--slot "purple" is not a slot`},
		{[]string{"exec", "--slot", "all", "--", "ls"}, 2, `--slot "all" is not a slot`},
		{[]string{"exec"}, 2, "no command to run"},
		{[]string{"open", "kibana"}, 2, "not something liftoff opens"},
		{[]string{"releases", "-n", "0"}, 2, "-n 0"},
		{[]string{"deploy", "--namespace", "x", "--steps", "50,10,100"}, 2, `--steps "50,10,100": has "10", not a rising percentage`},
		{[]string{"deploy", "--namespace", "x", "--steps", "10,50"}, 2, "must end at 100"},
		{[]string{"deploy", "--namespace", "x", "--steps", "10,100", "--bake", "0"}, 2, "--steps without a bake"},
		{[]string{"deploy", "--namespace", "x", "--bake", "2h"}, 2, "--bake 2h0m0s is not from 0 to 1h"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", kc, "--set", "bakeMaxErrors=5"}, 2, "bakeMaxErrors"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", kc, "--set", "steps=10,100", "--set", "bake=0s"}, 2, "needs a bake"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", kc, "--set", "autoscale=5-2"}, 2, "must be MIN-MAX replicas"},
		{[]string{"init", "--target", "kubeconfig", "--kubeconfig", kc, "--set", "autoscale=1-5"}, 2, "starts below liftoff:replicas (2)"},
		{[]string{"secrets", "set"}, 2, "no secret to set"},
		{[]string{"secrets", "set", "1BAD=x"}, 2, "not a valid environment variable name"},
		{[]string{"secrets", "set", "DATABASE_URL=postgres://x"}, 2, "reserved by liftoff"},
		{[]string{"secrets", "set", "A", "B=1"}, 2, "A has no value"},
		{[]string{"secrets", "unset", "CACHE_URL"}, 2, "reserved by liftoff"},
		{[]string{"secrets", "ls", "-s", "prod"}, 9, "init"},
		{[]string{"logs", "-s", "prod"}, 9, "init"},
	}
	for _, tc := range cases {
		r := c.run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.msg) {
			t.Errorf("liftoff %s: exit %d (want %d), stderr %q (want %q)", strings.Join(tc.args, " "), r.code, tc.code, r.err, tc.msg)
		}
	}
	// Invalid init writes nothing.
	if ents, _ := os.ReadDir(c.dir); len(ents) != 0 {
		t.Errorf("failed init left files: %v", ents)
	}
	// --json turns the error into the last event.
	r := c.run("--json", "up")
	var ev ui.Event
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.Type != "error" || ev.Class != "config" || ev.ExitCode != 2 {
		t.Errorf("json error: %q", r.out)
	}
}

func TestAccessHints(t *testing.T) {
	got := accessHints(map[string]any{"grafana": "kps-grafana.observability.svc:80", "alertmanager": "kps-alertmanager.observability.svc:9093", "other": "x"})
	for _, want := range []string{"kubectl -n observability port-forward svc/kps-grafana 3000:80", "svc/kps-alertmanager 9093:9093", "--show-secrets"} {
		if !strings.Contains(got, want) {
			t.Errorf("hints lack %q:\n%s", want, got)
		}
	}
	if accessHints(map[string]any{"namespace": "shop"}) != "" {
		t.Error("hints without dashboards")
	}
}

func TestVersionAndDoctor(t *testing.T) {
	c := newCLI(t)
	r := c.mustRun("version", "--json")
	var ev ui.Event
	json.Unmarshal([]byte(r.out), &ev)
	if ev.Fields()["pulumi"] != "3.259.0" || ev.Fields()["version"] == "" {
		t.Errorf("version: %s", r.out)
	}
	c.env["LIFTOFF_PULUMI"] = "/nonexistent/pulumi"
	r = c.run("doctor")
	if !strings.Contains(r.out, "pulumi CLI") || !strings.Contains(r.out, "fix:") {
		t.Errorf("doctor: %s", r.out)
	}
}

// TestEndToEnd drives the CLI against the real engine: init, up, status,
// config, a locked stack, stale-lock recovery, queueing, destroy.
func TestEndToEnd(t *testing.T) {
	c := newCLI(t).withEngine()
	const secret = "postgres://app:s3cr3t-pw@db.internal:5432/app"
	c.mustRun("init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", kubeconfigFile(t), "--registry", "127.0.0.1:5000/app",
		"--set", "database=external", "--set-secret", "databaseUrl="+secret, "--set", "observability=false", "--set", "cache=none")
	if b, _ := os.ReadFile(filepath.Join(c.dir, "Pulumi.dev.yaml")); !bytes.Contains(b, []byte("encryptionsalt")) || bytes.Contains(b, []byte("s3cr3t")) {
		t.Fatalf("stack file: %s", b)
	}
	if r := c.run("init", "-s", "dev", "--target", "kubeconfig"); r.code != 2 || !strings.Contains(r.err, "already initialised") {
		t.Errorf("second init: %+v", r)
	}

	r := c.mustRun("up", "--infra-only", "--json")
	evs := validEvents(t, r.out)
	if evs[0].Type != "phase_start" || evs[len(evs)-1].Type != "summary" || evs[len(evs)-1].Outputs["registry"] != "127.0.0.1:5000/app" {
		t.Errorf("up events: %s", r.out)
	}
	if strings.Contains(r.out+r.err, "s3cr3t") {
		t.Error("secret in output")
	}

	r = c.mustRun("status")
	for _, want := range []string{"stack     dev (kubeconfig)", "update succeeded", "lock      free", "namespace"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("status lacks %q:\n%s", want, r.out)
		}
	}
	validEvents(t, c.mustRun("status", "--json").out)

	// Config: validated before storing; secrets masked unless asked.
	if r := c.run("config", "set", "replicas", "100"); r.code != 2 {
		t.Errorf("invalid set: %+v", r)
	}
	c.mustRun("config", "set", "replicas", "3")
	if r := c.mustRun("config", "get", "replicas"); r.out != "3\n" {
		t.Errorf("get: %q", r.out)
	}
	if r := c.mustRun("config", "get"); !strings.Contains(r.out, "[secret]") || strings.Contains(r.out, "s3cr3t") {
		t.Errorf("get all: %s", r.out)
	}
	if r := c.mustRun("config", "get", "databaseUrl", "--show-secrets"); strings.TrimSpace(r.out) != secret {
		t.Errorf("show secret: %q", r.out)
	}
	if r := c.runCtx(context.Background(), "postgres://app:new@db/app\n", "config", "set", "--secret", "databaseUrl"); r.code != 0 || strings.Contains(r.out, "new@") {
		t.Errorf("secret from stdin: %+v", r)
	}
	if r := c.run("config", "set", "databaseUrl", "x"); r.code != 2 || !strings.Contains(r.err, "--secret") {
		t.Errorf("plain secret: %+v", r)
	}
	if r := c.run("config", "set", "nodeMax", "3"); r.code != 2 || !strings.Contains(r.err, "does not apply") {
		t.Errorf("other target's key: %+v", r)
	}
	if r := c.mustRun("config", "get", "scaleDownDelay"); strings.TrimSpace(r.out) != "5m" {
		t.Errorf("default: %q", r.out)
	}
	c.mustRun("config", "rm", "replicas")

	// A live holder: locked, named, exit 4.
	lockPath := filepath.Join(c.home, "state", ".liftoff", "locks", projectOf(t, c.dir), "dev.json")
	other := lock.Holder{User: "ci", Host: "runner-9", PID: 4242, Since: time.Now(), Command: "liftoff up", CIRun: "acme/app#77"}
	writeLock(t, lockPath, other)
	r = c.run("up", "--infra-only")
	if r.code != 4 || !strings.Contains(r.err, "ci@runner-9 (pid 4242, liftoff up, CI run acme/app#77)") || !strings.Contains(r.err, "liftoff cancel") {
		t.Errorf("locked up: %+v", r)
	}
	if r := c.mustRun("status"); !strings.Contains(r.out, "held by ci@runner-9") {
		t.Errorf("status lock: %s", r.out)
	}
	r = c.mustRun("cancel", "--yes")
	if !strings.Contains(r.out, "broke 1 lock") {
		t.Errorf("cancel: %s", r.out)
	}

	// A dead holder on this host: broken with a warning.
	dead := lock.Self("liftoff up", func(string) string { return "" }, time.Now())
	dead.PID, dead.Start = 999999, 1
	writeLock(t, lockPath, dead)
	r = c.mustRun("up", "--infra-only")
	if !strings.Contains(r.err, "broke a stale lock") {
		t.Errorf("stale lock not reported: %s", r.err)
	}

	// --lock-wait queues behind a live run.
	held, err := lock.Acquire(context.Background(), lockPath, lock.Self("test", func(string) string { return "" }, time.Now()), lock.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(1500 * time.Millisecond); held.Release() }()
	if r := c.run("up", "--infra-only", "--lock-wait", "1m"); r.code != 0 || !strings.Contains(r.err, "waiting up to 1m0s") {
		t.Errorf("queued up: %+v", r)
	}

	// Concurrent runs serialize: exactly one gets the lock without waiting.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = c.run("up", "--infra-only").code }()
	}
	wg.Wait()
	if !(codes[0] == 0 && codes[1] == 4 || codes[0] == 4 && codes[1] == 0) {
		t.Errorf("concurrent up codes: %v", codes)
	}

	c.mustRun("stacks", "ls")
	if r := c.run("destroy"); r.code != 2 || !strings.Contains(r.err, "--yes") {
		t.Errorf("destroy without --yes: %+v", r)
	}
	if r := c.run("destroy", "--yes"); r.code == 0 || !strings.Contains(r.err, "--force") && !strings.Contains(r.err, "kubeconfig") {
		t.Errorf("destroy with an unreachable cluster: %+v", r)
	}
	r = c.mustRun("destroy", "--yes", "--force", "--json")
	validEvents(t, r.out)
	if !strings.Contains(r.out, `"state_removed":true`) {
		t.Errorf("destroy: %s", r.out)
	}
	if r := c.mustRun("stacks", "ls", "--json"); strings.Contains(r.out, `"name":"dev"`) {
		t.Errorf("stack still listed: %s", r.out)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "Pulumi.dev.yaml")); !os.IsNotExist(err) {
		t.Error("stack file left behind")
	}
}

func projectOf(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "Pulumi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "name: "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no project name")
	return ""
}

func writeLock(t *testing.T, path string, h lock.Holder) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o700)
	b, _ := json.Marshal(h)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// validEvents checks every stdout line against docs/events.schema.json.
func validEvents(t *testing.T, out string) []ui.Event {
	t.Helper()
	f, err := os.Open("../../docs/events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	comp := jsonschema.NewCompiler()
	comp.AddResource("events.schema.json", doc)
	sch, err := comp.Compile("events.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var evs []ui.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(sc.Text()))
		if err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		if err := sch.Validate(inst); err != nil {
			t.Errorf("invalid event %s: %v", sc.Text(), err)
		}
		var e ui.Event
		json.Unmarshal(sc.Bytes(), &e)
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	return evs
}

// TestPreviewsAndGC: previews carry their parent and expiry as stack tags,
// the parent's limit is enforced before anything is created, and gc
// destroys only the expired ones, state included (real engine).
func TestPreviewsAndGC(t *testing.T) {
	c := newCLI(t).withEngine()
	// Previews with an external database and no cache declare no provider
	// resources, so the real engine runs them here without plugins.
	own := []string{"--target", "kubeconfig", "--set", "database=external", "--set-secret", "databaseUrl=postgres://a:b@db:5432/app", "--set", "cache=none"}
	if r := c.run("up", "-s", "pr-1", "--preview-of", "prod"); r.code != 9 || !strings.Contains(r.err, "parent stack prod has no settings file") {
		t.Errorf("preview of a missing parent: exit %d, %s", r.code, r.err)
	}
	kc := kubeconfigFile(t)
	c.mustRun(append([]string{"init", "-s", "prod", "--kubeconfig", kc, "--registry", "127.0.0.1:5000/app", "--set", "observability=false", "--set", "maxPreviews=2"}, own...)...)
	if r := c.run("up", "-s", "pr-1", "--preview-of", "prod", "--infra-only"); r.code != 9 || !strings.Contains(r.err, "never stood up") {
		t.Errorf("preview of a parent never up'd: exit %d, %s", r.code, r.err)
	}
	c.mustRun("up", "-s", "prod", "--infra-only")
	if r := c.run("up", "-s", "prod", "--preview-of", "pr-1"); r.code != 2 || !strings.Contains(r.err, "not a preview of pr-1") {
		t.Errorf("--preview-of on the parent: exit %d, %s", r.code, r.err)
	}
	if r := c.run("up", "-s", "prod", "--ttl", "1h"); r.code != 2 || !strings.Contains(r.err, "only a preview stack takes --ttl") {
		t.Errorf("--ttl on the parent: exit %d, %s", r.code, r.err)
	}
	for _, pr := range []string{"pr-1", "pr-2", "pr-3"} {
		c.mustRun(append([]string{"init", "-s", pr, "--set", "previewOf=prod"}, own...)...)
	}
	// The preview reads the parent's cluster and registry from its outputs.
	r := c.mustRun("up", "-s", "pr-2", "--preview-of", "prod", "--ttl", "1h", "--infra-only", "--json")
	if !strings.Contains(r.out, `"kubeconfig":"`+kc+`"`) || !strings.Contains(r.out, `"registry":"127.0.0.1:5000/app"`) || !strings.Contains(r.out, `"previewOf":"prod"`) {
		t.Errorf("preview outputs do not carry the parent's cluster and registry:\n%s", r.out)
	}
	c.clock = func() time.Time { return time.Now().Add(-2 * time.Hour) } // pr-1 went up two hours ago
	c.mustRun("up", "-s", "pr-1", "--preview-of", "prod", "--ttl", "1h", "--infra-only")
	c.clock = time.Now
	if r := c.run("up", "-s", "pr-3", "--infra-only"); r.code != 2 || !strings.Contains(r.err, "prod already has 2 previews (pr-1, pr-2)") {
		t.Errorf("third preview: exit %d, %s", r.code, r.err)
	}
	ls := c.mustRun("stacks", "ls").out
	for _, l := range strings.Split(ls, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == "pr-3" && strings.Contains(l, "prod") { // init made it; the refused up tagged nothing
			t.Errorf("refused preview was tagged: %s", l)
		}
	}
	if strings.Count(ls, "prod") != 3 {
		t.Errorf("stacks ls:\n%s", ls)
	}
	dry := c.mustRun("stacks", "gc", "--dry-run").out
	if !strings.Contains(dry, "pr-1 (preview of prod") || strings.Contains(dry, "pr-2") {
		t.Errorf("gc --dry-run:\n%s", dry)
	}
	if r := c.run("stacks", "gc"); r.code != 2 || !strings.Contains(r.err, "--yes") {
		t.Errorf("gc without --yes: %+v", r)
	}
	// The preview's cluster is gone (its kubeconfig with it): without
	// --force gc stops at the cluster and keeps the state.
	os.Remove(kc)
	if r := c.run("stacks", "gc", "--yes"); r.code == 0 || !strings.Contains(r.err, "--force") {
		t.Errorf("gc with the preview's cluster gone: %+v", r)
	}
	// A CI job on a fresh checkout has no Pulumi.pr-1.yaml: gc tears the
	// preview down from what the backend recorded. --force carries on past
	// the missing cluster, and the receipt says what was not swept.
	if err := os.Remove(filepath.Join(c.dir, "Pulumi.pr-1.yaml")); err != nil {
		t.Fatal(err)
	}
	r = c.run("stacks", "gc", "--yes", "--force", "--json")
	if r.code != 0 || !strings.Contains(r.out, `"removed":["pr-1"]`) || !strings.Contains(r.out, `sweeping the cluster failed`) {
		t.Fatalf("gc: %+v", r)
	}
	ls = c.mustRun("stacks", "ls").out
	if strings.Contains(ls, "pr-1") || !strings.Contains(ls, "pr-2") {
		t.Errorf("after gc:\n%s", ls)
	}
	if r := c.mustRun("stacks", "gc", "--dry-run"); !strings.Contains(r.out, "no expired previews") {
		t.Errorf("second dry run: %s", r.out)
	}
}

// as is the same project and home with other environment variables: a CI
// job with credentials of its own.
func (c *cli) as(env map[string]string) *cli {
	o := *c
	o.env = maps.Clone(c.env)
	maps.Copy(o.env, env)
	return &o
}

// TestPreviewOwnCredentials: a preview made by a job with a passphrase of
// its own reads its parent without it (real engine): the parent's plain
// outputs, never its secrets; its own kubeconfig, given to up, replaces
// the parent's and is kept only in the preview's state, as a secret;
// bad credentials and --with-data (which needs the parent's secrets) are
// refused before anything changes.
func TestPreviewOwnCredentials(t *testing.T) {
	owner := newCLI(t).withEngine()
	kc := kubeconfigFile(t)
	owner.mustRun("init", "-s", "prod", "--target", "kubeconfig", "--kubeconfig", kc, "--registry", "127.0.0.1:5000/app", "--set", "observability=false",
		"--set", "database=external", "--set-secret", "databaseUrl=postgres://a:parent-db-pw@db:5432/app", "--set", "cache=none")
	owner.mustRun("up", "-s", "prod", "--infra-only")

	job := owner.as(map[string]string{"LIFTOFF_PASSPHRASE": "the preview job's own passphrase"})
	own := []string{"--target", "kubeconfig", "--set", "database=external", "--set-secret", "databaseUrl=postgres://a:b@db:5432/pr", "--set", "cache=none"}
	job.mustRun(append([]string{"init", "-s", "pr-7", "--set", "previewOf=prod"}, own...)...)
	// The job's passphrase does not open the parent's state.
	if r := job.run("config", "get", "databaseUrl", "-s", "prod", "--show-secrets"); r.code == 0 || strings.Contains(r.out, "parent-db-pw") {
		t.Fatalf("the preview's passphrase opened the parent's secrets: %+v", r)
	}
	ownKC := filepath.Join(t.TempDir(), "preview.kubeconfig")
	os.WriteFile(ownKC, []byte(`apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: previews, user: {token: previews-own-token}}]
contexts: [{name: previews, context: {cluster: k, user: previews}}, {name: other, context: {cluster: k, user: previews}}]
current-context: previews
`), 0o600)

	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--kubeconfig", "/nonexistent/kubeconfig"}, 2, "liftoff:previewKubeconfig"},
		{[]string{"--kubeconfig", ownKC, "--context", "nope"}, 2, `has no context "nope"`},
		{[]string{"--context", "previews"}, 2, "--context names a context in the preview's own kubeconfig"},
		{[]string{"--kubeconfig", ownKC, "--with-data"}, 3, "this run's passphrase does not open them"},
	} {
		r := job.run(append([]string{"up", "-s", "pr-7", "--preview-of", "prod", "--infra-only"}, bad.args...)...)
		if r.code != bad.code || !strings.Contains(r.err, bad.want) {
			t.Errorf("up %v: exit %d, want %d and %q:\n%s", bad.args, r.code, bad.code, bad.want, r.err)
		}
	}
	if r := job.as(map[string]string{"LIFTOFF_REGISTRY_USERNAME": "preview"}).run("up", "-s", "pr-7", "--preview-of", "prod", "--infra-only"); r.code != 2 || !strings.Contains(r.err, "registry login is half given") {
		t.Errorf("up with a registry user and no password: exit %d\n%s", r.code, r.err)
	}
	if vals, _ := config.ReadStackFile(job.dir, "pr-7"); vals["liftoff:previewKubeconfig"].Text != "" || vals["liftoff:ttl"].Text != "" {
		t.Errorf("a refused up wrote settings: %v", vals)
	}

	r := job.mustRun("up", "-s", "pr-7", "--preview-of", "prod", "--kubeconfig", ownKC, "--ttl", "2h", "--infra-only", "--json")
	outs, _ := summaryOf(t, r.out).Fields()["outputs"].(map[string]any)
	if outs["kubeconfigContent"] != "[secret]" || outs["kubeconfig"] != nil || outs["context"] != "previews" || outs["registry"] != "127.0.0.1:5000/app" || outs["previewOf"] != "prod" {
		t.Errorf("the preview's outputs: %v", outs)
	}
	if vals, _ := config.ReadStackFile(job.dir, "pr-7"); vals["liftoff:previewKubeconfig"].Text != ownKC {
		t.Errorf("the preview's own kubeconfig is not its setting: %v", vals["liftoff:previewKubeconfig"])
	}
	var state []byte
	filepath.WalkDir(job.home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "pr-7.json" {
			state, _ = os.ReadFile(path)
		}
		return nil
	})
	if !strings.Contains(string(state), `"previewOf"`) {
		t.Fatalf("no state of pr-7 under %s", job.home)
	}
	if strings.Contains(string(state), "previews-own-token") || strings.Contains(string(state), kc) {
		t.Errorf("the preview's state holds its token in plain text, or the parent's kubeconfig path")
	}
	// The owner, with the parent's passphrase, cannot read the preview's secrets either.
	if r := owner.run("config", "get", "databaseUrl", "-s", "pr-7", "--show-secrets"); r.code == 0 {
		t.Errorf("the parent's passphrase opened the preview's secrets: %+v", r)
	}
	job.mustRun("destroy", "-s", "pr-7", "--yes", "--force")
}

// kubeconfigFile writes a kubeconfig whose one context (current) names a
// cluster nothing answers for: init accepts it, a run that needs the
// cluster says it does not answer.
func kubeconfigFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: k, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: k, user: {token: t}}]
contexts: [{name: k, context: {cluster: k, user: k}}]
current-context: k
`), 0o600)
	return path
}
