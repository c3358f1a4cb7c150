package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

const plaintext = "hunter2-plaintext-secret"

type comp struct{ pulumi.ResourceState }

// program uses only what needs no provider plugin: a component, config, a secret and outputs.
func program(block <-chan struct{}) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		c := &comp{}
		if err := ctx.RegisterComponentResource("liftoff:test:Thing", "thing", c); err != nil {
			return err
		}
		cfg := config.New(ctx, "liftoff")
		if block != nil {
			<-block
		}
		ctx.Export("greeting", pulumi.String("hello "+cfg.Get("name")))
		ctx.Export("password", cfg.RequireSecret("password"))
		return ctx.RegisterResourceOutputs(c, pulumi.Map{})
	}
}

type env struct {
	dir, home, state string
	vars             map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), home: t.TempDir(), vars: map[string]string{}}
	e.state = filepath.Join(e.home, "state")
	os.WriteFile(filepath.Join(e.dir, "Pulumi.yaml"), []byte("name: enginetest\nruntime: go\n"), 0o644)
	e.vars["LIFTOFF_PULUMI"] = testenv.Pulumi(t)
	e.vars["LIFTOFF_PASSPHRASE"] = "correct horse"
	return e
}

func (e *env) engine(t *testing.T) *Engine {
	t.Helper()
	eng, err := New(context.Background(), Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] }})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// stack creates stack dev with the test program's one secret setting.
func (e *env) stack(t *testing.T, eng *Engine) *Stack {
	t.Helper()
	ctx := context.Background()
	st, err := eng.Stack(ctx, "dev", program(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetConfigs(ctx, map[string]ConfigEntry{"liftoff:password": {Value: "x", Secret: true}}); err != nil {
		t.Fatal(err)
	}
	return st
}

// upStack is stack, brought up once.
func (e *env) upStack(t *testing.T, eng *Engine) *Stack {
	t.Helper()
	st := e.stack(t, eng)
	if _, _, err := st.Up(context.Background(), &recorder{}); err != nil {
		t.Fatal(err)
	}
	return st
}

// watchedEngine is a second engine on e whose warnings are recorded.
func (e *env) watchedEngine(t *testing.T) (*Engine, *[]string) {
	t.Helper()
	var warnings []string
	eng, err := New(context.Background(), Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] },
		Warn: func(f string, a ...any) { warnings = append(warnings, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	return eng, &warnings
}

type recorder struct {
	mu    sync.Mutex
	steps []string
	diags []string
}

func (r *recorder) ResourceStarted(urn, typ, name, op string) {}
func (r *recorder) ResourceDone(urn, typ, name, op string, failed bool) {
	r.mu.Lock()
	r.steps = append(r.steps, op+" "+typ+" "+name)
	r.mu.Unlock()
}
func (r *recorder) Diagnostic(sev, msg string) {
	r.mu.Lock()
	r.diags = append(r.diags, sev+": "+msg)
	r.mu.Unlock()
}
func (r *recorder) SetTotal(int) {}

func TestStackLifecycleAndSecrets(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eng := e.engine(t)
	st, err := eng.Stack(ctx, "dev", program(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetConfigs(ctx, map[string]ConfigEntry{
		"liftoff:name":     {Value: "world"},
		"liftoff:password": {Value: plaintext, Secret: true},
		"liftoff:nodes":    {Value: `[{"host":"a","port":22}]`, Object: true},
	}); err != nil {
		t.Fatal(err)
	}
	if v, secret, err := st.GetConfig(ctx, "liftoff:password", false); err != nil || v != plaintext || !secret {
		t.Fatalf("secret round trip: %q %v %v", v, secret, err)
	}
	if v, _, err := st.GetConfig(ctx, "liftoff:nodes[0].port", true); err != nil || v != "22" {
		t.Fatalf("object round trip: %q %v", v, err)
	}
	rec := &recorder{}
	outs, _, err := st.Up(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if outs.String("greeting") != "hello world" || !outs["password"].Secret || outs.Masked()["password"] != "[secret]" {
		t.Errorf("outputs: %+v", outs)
	}
	if len(rec.steps) != 1 || rec.steps[0] != "create liftoff:test:Thing thing" {
		t.Errorf("steps: %v", rec.steps)
	}
	// The plaintext appears in no file the engine wrote: not the state, not the stack settings.
	for _, root := range []string{e.home, e.dir} {
		filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(plaintext)) {
					t.Errorf("%s contains the plaintext secret", p)
				}
			}
			return nil
		})
	}
	// Unchanged program: no steps but "same".
	rec = &recorder{}
	if _, _, err := st.Up(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.steps) != 1 || !strings.HasPrefix(rec.steps[0], "same ") {
		t.Errorf("second up steps: %v", rec.steps)
	}
	if u, err := st.LastUpdate(ctx); err != nil || u.Kind != "update" || u.Result != "succeeded" {
		t.Errorf("last update: %+v %v", u, err)
	}
	if err := st.SetTag(ctx, "liftoff:preview-of", "prod"); err != nil {
		t.Fatal(err)
	}
	list, err := eng.ListStacks(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "dev" || list[0].Tags["liftoff:preview-of"] != "prod" || list[0].Resources != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}

	// A wrong passphrase is an auth failure, not an engine crash.
	e.vars["LIFTOFF_PASSPHRASE"] = "wrong"
	bad, err := e.engine(t).Stack(ctx, "dev", program(nil), false)
	if err == nil {
		_, _, err = bad.Up(ctx, nil)
	}
	if failure.ClassOf(err) != failure.Auth {
		t.Errorf("wrong passphrase: class %v: %v", failure.ClassOf(err), err)
	}
	e.vars["LIFTOFF_PASSPHRASE"] = "correct horse"

	if res, err := st.Resources(ctx); err != nil || len(res) != 1 || res[0].Type != "liftoff:test:Thing" || res[0].Name != "thing" {
		t.Errorf("resources before destroy: %+v %v", res, err)
	}
	if err := st.Destroy(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Resources(ctx); err != nil || len(res) != 0 {
		t.Errorf("resources after destroy: %+v %v", res, err)
	}
	if err := eng.RemoveStack(ctx, "dev", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "Pulumi.dev.yaml")); !os.IsNotExist(err) {
		t.Error("stack settings file left after remove")
	}
	if _, err := eng.Stack(ctx, "dev", nil, false); failure.ClassOf(err) != failure.NotFound {
		t.Errorf("removed stack: %v", err)
	}
}

func TestConcurrentUpIsLocked(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eng := e.engine(t)
	block := make(chan struct{})
	first, err := eng.Stack(ctx, "dev", program(block), true)
	if err != nil {
		t.Fatal(err)
	}
	first.SetConfigs(ctx, map[string]ConfigEntry{"liftoff:password": {Value: "x", Secret: true}})
	done := make(chan error, 1)
	go func() { _, _, err := first.Up(ctx, nil); done <- err }()
	lockDir, _ := first.EngineLockDir()
	waitFor(t, func() bool { ents, _ := os.ReadDir(lockDir); return len(ents) > 0 })

	second, err := eng.Stack(ctx, "dev", program(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = second.Up(ctx, nil)
	if failure.ClassOf(err) != failure.Locked {
		t.Fatalf("second up: class %v: %v", failure.ClassOf(err), err)
	}
	if !strings.Contains(err.Error(), "pid") {
		t.Errorf("holder not named: %v", err)
	}
	close(block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestKilledRunRecovered kills a run (liftoff's process and its pulumi child)
// in the middle of an update; the next run clears the dead lock and finishes.
func TestKilledRunRecovered(t *testing.T) {
	if os.Getenv("ENGINE_TEST_HELPER") == "up" {
		helperUp(t)
		return
	}
	ctx := context.Background()
	e := newEnv(t)
	eng := e.engine(t)
	st := e.stack(t, eng)

	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledRunRecovered$")
	cmd.Env = append(os.Environ(), "ENGINE_TEST_HELPER=up", "HELPER_DIR="+e.dir, "HELPER_HOME="+e.home, "LIFTOFF_PULUMI="+e.vars["LIFTOFF_PULUMI"])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lockDir, _ := st.EngineLockDir()
	waitFor(t, func() bool { ents, _ := os.ReadDir(lockDir); return len(ents) > 0 })
	// SIGKILL both: the helper's group, and pulumi, which runs in a group of its own.
	for _, pid := range children(cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	if ents, _ := os.ReadDir(lockDir); len(ents) == 0 {
		t.Fatal("the killed run left no lock: the test proves nothing")
	}

	eng2, warnings := e.watchedEngine(t)
	st2, err := eng2.Stack(ctx, "dev", program(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st2.Up(ctx, nil); err != nil {
		t.Fatalf("recovery up: %v", err)
	}
	if len(*warnings) == 0 {
		t.Error("recovery was silent")
	}
}

func helperUp(t *testing.T) {
	eng, err := New(context.Background(), Options{Dir: os.Getenv("HELPER_DIR"), Home: os.Getenv("HELPER_HOME"),
		Getenv: func(k string) string {
			if k == "LIFTOFF_PASSPHRASE" {
				return "correct horse"
			}
			return os.Getenv(k)
		}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := eng.Stack(context.Background(), "dev", program(make(chan struct{})), false)
	if err != nil {
		t.Fatal(err)
	}
	st.Up(context.Background(), nil) // blocks until killed
}

// TestPendingOperationsCleared plants a pending create, as a run killed during
// a provider call leaves, and checks the next up clears it through refresh.
func TestPendingOperationsCleared(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eng := e.engine(t)
	st := e.upStack(t, eng)
	path := filepath.Join(e.state, ".pulumi", "stacks", "enginetest", "dev.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pending := `"pending_operations":[{"resource":{"urn":"urn:pulumi:dev::enginetest::liftoff:test:Thing::ghost","custom":false,"type":"liftoff:test:Thing"},"type":"creating"}],`
	b = bytes.Replace(b, []byte(`"resources":`), []byte(pending+`"resources":`), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if dep, _ := st.st.Export(ctx); !bytes.Contains(dep.Deployment, []byte("ghost")) {
		t.Fatal("planted pending operation not visible: the test proves nothing")
	}
	var warnings []string
	eng.o.Warn = func(f string, a ...any) { warnings = append(warnings, f) }
	if _, _, err := st.Up(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if dep, _ := st.st.Export(ctx); bytes.Contains(dep.Deployment, []byte("ghost")) {
		t.Error("pending operation still in state")
	}
	if len(warnings) < 2 {
		t.Errorf("warnings: %v", warnings)
	}
}

func TestMissingCLIAndPassphrase(t *testing.T) {
	e := newEnv(t)
	e.vars["LIFTOFF_PULUMI"] = filepath.Join(t.TempDir(), "nope")
	_, err := New(context.Background(), Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] }})
	if failure.ClassOf(err) != failure.Config || failure.FixOf(err) == "" {
		t.Errorf("missing CLI: %v", err)
	}
	e = newEnv(t)
	delete(e.vars, "LIFTOFF_PASSPHRASE")
	_, err = New(context.Background(), Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] }})
	if failure.ClassOf(err) != failure.Auth {
		t.Errorf("no passphrase: %v", err)
	}
	_, err = New(context.Background(), Options{Dir: t.TempDir(), Home: e.home, Getenv: func(k string) string { return e.vars[k] }})
	if failure.ClassOf(err) != failure.Config {
		t.Errorf("no project: %v", err)
	}
}

func TestEngineMessage(t *testing.T) {
	raw := "failed to run update: exit status 255\ncode: 255\nstdout: lots\nstderr: warning: x\nerror: update failed\n  because of y\n"
	if got := engineMessage(raw); got != "failed to run update: update failed\n  because of y" {
		t.Errorf("got %q", got)
	}
	if got := classify(errors.New(raw)); failure.ClassOf(got) != failure.Engine {
		t.Errorf("class %v", failure.ClassOf(got))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// children lists the descendants of pid, from /proc.
func children(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		var p int
		if _, err := fmtSscan(e.Name(), &p); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		var pp int
		fmtSscan(fields[1], &pp)
		parent[p] = pp
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for c, pp := range parent {
			if pp == p {
				out = append(out, c)
				walk(c)
			}
		}
	}
	walk(pid)
	return out
}

// TestPrivateTemp: the engine's temp files (the provider's kubeconfigs)
// live in liftoff's 0700 directory, and old ones are swept.
func TestPrivateTemp(t *testing.T) {
	home := t.TempDir()
	dir, err := privateTemp(home, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old, fresh := filepath.Join(dir, "kubeconfig123"), filepath.Join(dir, "kubeconfig456")
	os.WriteFile(old, []byte("x"), 0o600)
	os.WriteFile(fresh, []byte("x"), 0o600)
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	if _, err := privateTemp(home, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("an old temp file was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a fresh temp file was swept")
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("temp dir mode %v", st.Mode().Perm())
	}
}

// TestTruncatedSidecarRepaired: a run killed while the file backend wrote
// the checkpoint's metadata sidecar leaves it empty, and the engine then
// refuses the stack ("failed to load checkpoint: EOF"). This plants that
// state, proves the CLI refuses it, and checks liftoff opens the stack
// again, says so, and keeps its resources.
func TestTruncatedSidecarRepaired(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eng := e.engine(t)
	st := e.upStack(t, eng)
	before, err := st.Resources(ctx)
	if err != nil || len(before) == 0 {
		t.Fatalf("resources %v %v", before, err)
	}
	sidecar := filepath.Join(e.state, ".pulumi", "stacks", "enginetest", "dev.json.attrs")
	if _, err := os.Stat(sidecar); err != nil {
		t.Fatalf("no sidecar where the test plants one: %v", err)
	}
	if err := os.WriteFile(sidecar, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cli := exec.Command(e.vars["LIFTOFF_PULUMI"], "stack", "export", "--stack", "dev", "--cwd", e.dir, "--non-interactive")
	cli.Env = append(os.Environ(), "PULUMI_BACKEND_URL=file://"+e.state, "PULUMI_HOME="+t.TempDir(), "PULUMI_CONFIG_PASSPHRASE=correct horse", "PULUMI_SKIP_UPDATE_CHECK=1")
	out, err := cli.CombinedOutput()
	if !strings.Contains(string(out), "EOF") {
		t.Fatalf("the pulumi CLI reads the emptied sidecar without failing (%v: %s): the test proves nothing", err, out)
	}
	eng2, warnings := e.watchedEngine(t)
	st2, err := eng2.Stack(ctx, "dev", program(nil), false)
	if err != nil {
		t.Fatalf("open after a cut-short sidecar: %v", err)
	}
	after, err := st2.Resources(ctx)
	if err != nil || len(after) != len(before) {
		t.Errorf("resources after repair: %d, before %d (%v)", len(after), len(before), err)
	}
	if len(*warnings) != 1 || !strings.Contains((*warnings)[0], "dev.json.attrs") {
		t.Errorf("warnings %q", *warnings)
	}
}

// TestSelectFromCheckpoint: opening a stack whose checkpoint is on disk runs
// no `pulumi stack select`, and every command after it still finds the
// stack; a stack that does not exist is still refused by the real select.
func TestSelectFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.upStack(t, e.engine(t))
	// A workspace that remembers another stack as current: were the
	// skipped select needed, the commands below would act on it.
	other, err := e.engine(t).Stack(ctx, "other", program(nil), true)
	if err != nil || other == nil {
		t.Fatal(err)
	}

	var log bytes.Buffer
	eng, err := New(ctx, Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] }, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	st, err := eng.Stack(ctx, "dev", program(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "pulumi stack select: answered from the checkpoint") || strings.Contains(log.String(), "pulumi stack select: 0") {
		t.Errorf("select was not answered from the checkpoint:\n%s", log.String())
	}
	if v, _, err := st.GetConfig(ctx, "liftoff:password", false); err != nil || v != "x" {
		t.Errorf("config of dev after the local select: %q %v", v, err)
	}
	outs, _, err := st.Up(ctx, &recorder{})
	if err != nil || outs.String("greeting") != "hello " {
		t.Errorf("up of dev after the local select: %v %v", outs, err)
	}

	log.Reset()
	_, err = eng.Stack(ctx, "missing", program(nil), false)
	if failure.ClassOf(err) != failure.NotFound {
		t.Errorf("a missing stack: %v", err)
	}
	if !strings.Contains(log.String(), "pulumi stack select: ") || strings.Contains(log.String(), "answered from the checkpoint") {
		t.Errorf("a missing stack's select did not run:\n%s", log.String())
	}
}

// TestOrphanedEngineWaitedFor: a pulumi lock held by an engine whose liftoff
// was killed (the process now belongs to init) is waited for until that
// process stops, then the run goes on; before, the next up stopped as locked.
func TestOrphanedEngineWaitedFor(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	eng, warnings := e.watchedEngine(t)
	st := e.stack(t, eng)
	out, err := exec.Command("sh", "-c", "sleep 1 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(out), &pid)
	host, _ := os.Hostname()
	if !lock.Orphaned(lock.Holder{Host: host, PID: pid}) {
		t.Skipf("orphans are adopted by a subreaper here, not init (pid %d)", pid)
	}
	dir, _ := st.EngineLockDir()
	os.MkdirAll(dir, 0o700)
	held := filepath.Join(dir, "orphan.json")
	os.WriteFile(held, []byte(fmt.Sprintf(`{"pid":%d,"username":"root","hostname":%q,"timestamp":"2026-12-01T00:00:00Z"}`, pid, host)), 0o600)

	if err := st.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(held); !os.IsNotExist(err) {
		t.Errorf("the orphan's lock is still there: %v", err)
	}
	if lock.Alive(lock.Holder{Host: host, PID: pid}) {
		t.Error("recover returned while the orphan still ran")
	}
	if got := strings.Join(*warnings, "\n"); !strings.Contains(got, fmt.Sprintf("waiting for the pulumi engine a killed run left (pid %d) to stop", pid)) || !strings.Contains(got, "that process is gone") {
		t.Errorf("warnings: %s", got)
	}
	if _, _, err := st.Up(ctx, &recorder{}); err != nil {
		t.Errorf("up after the orphan stopped: %v", err)
	}
}

// TestOutputsFromCheckpoint: after an up, the outputs read from the
// checkpoint (secrets decrypted here) and the changes from the run's summary
// event are what the CLI's own `stack output` and `stack history` answer,
// for every kind of value a program exports; those CLI reads are not run.
func TestOutputsFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var log bytes.Buffer
	eng, err := New(ctx, Options{Dir: e.dir, Home: e.home, Getenv: func(k string) string { return e.vars[k] }, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	exports := func(ctx *pulumi.Context) error {
		c := &comp{}
		if err := ctx.RegisterComponentResource("liftoff:test:Thing", "thing", c); err != nil {
			return err
		}
		pw := config.New(ctx, "liftoff").RequireSecret("password")
		ctx.Export("plain", pulumi.String("hello"))
		ctx.Export("secret", pw)
		ctx.Export("number", pulumi.Int(42))
		ctx.Export("ratio", pulumi.Float64(0.75))
		ctx.Export("flag", pulumi.Bool(true))
		ctx.Export("list", pulumi.StringArray{pulumi.String("a"), pulumi.String("b")})
		ctx.Export("nested", pulumi.Map{"user": pulumi.String("app"), "password": pw, "ports": pulumi.IntArray{pulumi.Int(5432)}})
		ctx.Export("json", pulumi.ToSecret(pulumi.String(`{"a":[1,"x"]}`)))
		return ctx.RegisterResourceOutputs(c, pulumi.Map{})
	}
	st, err := eng.Stack(ctx, "dev", exports, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetConfigs(ctx, map[string]ConfigEntry{"liftoff:password": {Value: plaintext, Secret: true}}); err != nil {
		t.Fatal(err)
	}
	for i, wantCreate := range []int{2, 0} { // the first up creates the stack and the component
		log.Reset()
		outs, changes, err := st.Up(ctx, &recorder{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "pulumi stack output: read by liftoff") || !strings.Contains(log.String(), "pulumi stack history: read by liftoff") ||
			regexp.MustCompile(`pulumi stack (output|history): [0-9]`).MatchString(log.String()) {
			t.Errorf("up %d: the reads after it ran the CLI:\n%s", i+1, log.String())
		}
		cli, err := st.st.Outputs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := outputs(cli); !reflect.DeepEqual(outs, want) {
			t.Errorf("up %d: outputs from the checkpoint\n%#v\nfrom the CLI\n%#v", i+1, outs, want)
		}
		if outs["secret"].Value != plaintext || !outs["secret"].Secret || !outs["nested"].Secret || outs["plain"].Secret {
			t.Errorf("up %d: secrets: %#v", i+1, outs)
		}
		h, err := st.st.History(ctx, 1, 1)
		if err != nil || len(h) != 1 || h[0].ResourceChanges == nil {
			t.Fatalf("history: %+v %v", h, err)
		}
		if want := Changes(*h[0].ResourceChanges); !reflect.DeepEqual(changes, want) || changes["create"] != wantCreate {
			t.Errorf("up %d: changes from the summary event %v, from the history %v", i+1, changes, want)
		}
	}

	// Without the passphrase here the checkpoint cannot be read, and
	// Outputs asks the CLI (which has it through its own environment).
	phrase := e.vars["LIFTOFF_PASSPHRASE"]
	st.e.env["PULUMI_CONFIG_PASSPHRASE"] = ""
	if _, err := st.localOutputs(context.Background()); !errors.Is(err, errNotLocal) {
		t.Errorf("local outputs without a passphrase: %v", err)
	}
	st.e.env["PULUMI_CONFIG_PASSPHRASE"] = "wrong"
	if _, err := st.localOutputs(context.Background()); !errors.Is(err, errNotLocal) {
		t.Errorf("local outputs with a wrong passphrase: %v", err)
	}
	// Another passphrase (a preview's own) reads the plain outputs, names
	// the secret ones and opens none.
	plain, sealed, err := st.PlainOutputs(ctx)
	if err != nil || plain["plain"].Value != "hello" || plain["number"].Value != 42.0 || len(plain["list"].Value.([]any)) != 2 ||
		!reflect.DeepEqual(sealed, []string{"json", "nested", "secret"}) {
		t.Errorf("plain outputs: %#v, sealed %v, %v", plain, sealed, err)
	}
	if opens, err := st.OpensSecrets(ctx); opens || err != nil {
		t.Errorf("a wrong passphrase opens the secrets: %v %v", opens, err)
	}
	st.e.env["PULUMI_CONFIG_PASSPHRASE"] = e.vars["LIFTOFF_PASSPHRASE"]
	if opens, err := st.OpensSecrets(ctx); !opens || err != nil {
		t.Errorf("the stack's passphrase does not open its secrets: %v %v", opens, err)
	}
	st.e.env["PULUMI_CONFIG_PASSPHRASE"] = phrase
	pf := filepath.Join(t.TempDir(), "phrase")
	os.WriteFile(pf, []byte(phrase+"\n"), 0o600)
	delete(st.e.env, "PULUMI_CONFIG_PASSPHRASE")
	e.vars["PULUMI_CONFIG_PASSPHRASE_FILE"] = pf
	if o, err := st.localOutputs(context.Background()); err != nil || o["secret"].Value != plaintext {
		t.Errorf("local outputs with a passphrase file: %v %v", o, err)
	}
}
