package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built (43 MB a run otherwise left in
// /tmp). Started by BenchmarkApp with bareServerEnv set, the binary is the
// bench's bare server instead.
func TestMain(m *testing.M) {
	if addr := os.Getenv(bareServerEnv); addr != "" {
		serveBare(addr)
	}
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds the shortener once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shortener-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shortener")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd     *exec.Cmd
	url     string
	metrics string // the metrics listener
	log     *os.File
	done    chan error
}

func startBinary(t *testing.T, env ...string) *proc {
	t.Helper()
	port, mport := testenv.FreePort(t), testenv.FreePort(t)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "shortener.log"))
	cmd := exec.Command(binary(t))
	cmd.Env = append(os.Environ(), append([]string{fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport)},
		append(env, fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port))...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := testenv.StartWithTest(cmd); err != nil { // a killed test binary left the server running
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), metrics: fmt.Sprintf("http://127.0.0.1:%d", mport), log: logf, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("shortener log:\n%s", tail(string(b), 40))
		}
	})
	return p
}

// waitExit waits up to d for the process to exit with status 0.
func (p *proc) waitExit(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(d):
		t.Fatalf("no exit within %s of SIGTERM", d)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitListening waits until the shortener says it serves on its address
// and that address accepts: a connection alone is not proof, since another
// process may hold the port for a moment, or a loopback dial to a free
// ephemeral port may connect to itself (TCP simultaneous open). Both
// happened under make test's load: a POST then met a reset.
func (p *proc) waitListening(t *testing.T) {
	t.Helper()
	addr := strings.TrimPrefix(p.url, "http://")
	serving := fmt.Sprintf(`"msg":"serving","addr":%q`, addr)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(p.log.Name()); strings.Contains(string(b), serving) {
			if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
				c.Close()
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			t.Fatalf("shortener exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("shortener never listened")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 600}}

func get(url string) (int, error) {
	res, err := noRedirect.Get(url)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func post(t *testing.T, url, body string) string {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 {
		t.Fatalf("POST %s: %d %s", url, res.StatusCode, b)
	}
	return string(b)
}

func count(t *testing.T, dbURL, query string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStartupBurst fires 500 concurrent requests the moment the port opens,
// on a fresh database: the pool is warm and migrations applied before the
// listener exists, so none fails.
func TestStartupBurst(t *testing.T) {
	pg := testenv.StartPostgres(t)
	p := startBinary(t, "DATABASE_URL="+pg.URL)
	p.waitListening(t)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	start := make(chan struct{})
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			path := "/users"
			if i%2 == 1 {
				path = "/urls?page=1&per_page=5"
			}
			code, err := get(p.url + path)
			if err != nil || code != 200 {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %v", path, code, err))
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of 500 first requests failed, e.g. %v", n, firstErr.Load())
	}
}

// TestSIGTERMFlushesEvents holds clicks in the buffer (1h batch delay), then
// sends SIGTERM: every click is in the database when the process exits.
func TestSIGTERMFlushesEvents(t *testing.T) {
	pg := testenv.StartPostgres(t)
	p := startBinary(t, "DATABASE_URL="+pg.URL, "EVENTS_FLUSH_INTERVAL=1h", "EVENTS_BATCH=100000", "DURABLE_CLICKS=false")
	p.waitListening(t)
	post(t, p.url+"/users", `{"username":"ada","email":"ada@example.com"}`)
	out := post(t, p.url+"/urls", `{"user_id":1,"original_url":"https://example.com/"}`)
	code := out[strings.Index(out, `"short_code":"`)+14:]
	code = code[:strings.IndexByte(code, '"')]
	for i := range 300 {
		if c, err := get(p.url + "/" + code); err != nil || c != 302 {
			t.Fatalf("redirect %d: %d %v", i, c, err)
		}
	}
	if n := count(t, pg.URL, "SELECT COUNT(*) FROM events WHERE event_type = 'click'"); n != 0 {
		t.Fatalf("clicks written before shutdown (%d): the test would prove nothing", n)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitExit(t, 30*time.Second)
	if n := count(t, pg.URL, "SELECT COUNT(*) FROM events WHERE event_type = 'click'"); n != 300 {
		t.Fatalf("%d of 300 clicks written", n)
	}
}

// TestDatabaseRestart restarts PostgreSQL under load: the pool recovers by itself.
func TestDatabaseRestart(t *testing.T) {
	pg := testenv.StartPostgres(t)
	p := startBinary(t, "DATABASE_URL="+pg.URL)
	p.waitListening(t)
	post(t, p.url+"/users", `{"username":"ada","email":"ada@example.com"}`)

	stop := make(chan struct{})
	var lastOK atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := get(p.url + "/users/1"); err == nil && c == 200 {
					lastOK.Store(time.Now().UnixNano())
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	restarted := time.Now()
	pg.Restart(t, time.Second)
	up := time.Now()
	deadline := up.Add(20 * time.Second)
	for lastOK.Load() < up.UnixNano() {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatal("no successful request within 20s of the database coming back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("database down %s; first success %s after it was back", up.Sub(restarted).Round(time.Millisecond),
		time.Unix(0, lastOK.Load()).Sub(up).Round(time.Millisecond))
	if c, err := get(p.url + "/ready"); err != nil || c != 200 {
		t.Errorf("ready after restart: %d %v", c, err)
	}
}

// TestReplicasMigrateTogether starts three replicas on one fresh database:
// the advisory lock lets exactly one apply each migration.
func TestReplicasMigrateTogether(t *testing.T) {
	pg := testenv.StartPostgres(t)
	var ps []*proc
	for range 3 {
		ps = append(ps, startBinary(t, "DATABASE_URL="+pg.URL))
	}
	for _, p := range ps {
		p.waitListening(t)
		if c, err := get(p.url + "/ready"); err != nil || c != 200 {
			t.Fatalf("replica not ready: %d %v", c, err)
		}
	}
	all, _ := migrate.All()
	if n := count(t, pg.URL, "SELECT COUNT(*) FROM schema_migrations"); n != len(all) {
		t.Errorf("%d migration rows, want one per migration (%d)", n, len(all))
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	pg := testenv.StartPostgres(t)
	for range 2 {
		cmd := exec.Command(binary(t), "seed", "--dir", "../../seed/testdata")
		cmd.Env = append(os.Environ(), "DATABASE_URL="+pg.URL)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("seed: %v\n%s", err, out)
		}
	}
	for q, want := range map[string]int{
		"SELECT COUNT(*) FROM users": 400, "SELECT COUNT(*) FROM urls": 2000, "SELECT COUNT(*) FROM events": 3422,
		"SELECT COUNT(*) FROM urls WHERE NOT is_active":                                                   353,
		"SELECT COUNT(*) FROM events WHERE details->>'short_code' IS NOT NULL AND event_type = 'created'": 2000,
	} {
		if n := count(t, pg.URL, q); n != want {
			t.Errorf("%s = %d, want %d", q, n, want)
		}
	}
	// Sequences moved past the seed ids.
	p := startBinary(t, "DATABASE_URL="+pg.URL)
	p.waitListening(t)
	if out := post(t, p.url+"/urls", `{"user_id":1,"original_url":"https://example.com/"}`); !strings.Contains(out, `"id":2001`) {
		t.Errorf("new url after seed: %s", out)
	}
	cmd := exec.Command(binary(t), "seed")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+pg.URL)
	if err := cmd.Run(); err == nil {
		t.Error("seed without --dir succeeded")
	}
	cmd = exec.Command(binary(t))
	cmd.Env = []string{"PATH=/usr/bin"}
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "DATABASE_URL is required") {
		t.Errorf("no DATABASE_URL: %v %s", err, out)
	}
}

func TestPrintenv(t *testing.T) {
	env := map[string]string{"A": "1", "B": "two words"}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"printenv", "A", "B"}, func(k string) string { return env[k] }, &out); code != 0 || out.String() != "1\ntwo words\n" {
		t.Fatalf("printenv A B: exit %d, %q", code, out.String())
	}
	if code := run(context.Background(), []string{"printenv", "MISSING"}, func(k string) string { return env[k] }, &out); code != 1 {
		t.Fatalf("printenv MISSING: exit %d, want 1", code)
	}
}
