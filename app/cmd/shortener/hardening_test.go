package main

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestSettings: every variable is checked before anything starts, and the
// error names it and the form it wants; profiling stays on loopback.
func TestSettings(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string // "" for accepted
	}{
		{map[string]string{}, ""},
		{map[string]string{"PPROF_ADDR": "127.0.0.1:6060"}, ""},
		{map[string]string{"PPROF_ADDR": "[::1]:6060"}, ""},
		{map[string]string{"PPROF_ADDR": "localhost:6060"}, ""},
		{map[string]string{"PPROF_ADDR": ":6060"}, "PPROF_ADDR"},
		{map[string]string{"PPROF_ADDR": "0.0.0.0:6060"}, "PPROF_ADDR"},
		{map[string]string{"PPROF_ADDR": "10.0.0.1:6060"}, "PPROF_ADDR"},
		{map[string]string{"RATE_LIMIT_WRITES": "-1"}, "RATE_LIMIT_WRITES"},
		{map[string]string{"RATE_LIMIT_REDIRECTS": "lots"}, "RATE_LIMIT_REDIRECTS"},
		{map[string]string{"FLUSH_TIMEOUT": "soon"}, "FLUSH_TIMEOUT"},
		{map[string]string{"DURABLE_CLICKS": "maybe"}, "DURABLE_CLICKS"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"ACCESS_LOG_RATE": "0"}, "ACCESS_LOG_RATE"},
	} {
		_, err := readSettings(func(k string) string { return c.env[k] })
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v refused: %v", c.env, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want an error naming %s", c.env, err, c.want)
		}
	}
	s, _ := readSettings(func(string) string { return "" })
	if !s.durableClicks || s.writeRate != 10 || s.redirRate != 0 || s.metrics != ":9091" || s.statementTimeout != 5*time.Second || len(s.trusted) != 6 {
		t.Errorf("defaults: %+v", s)
	}
	if s, _ := readSettings(func(k string) string { return map[string]string{"TRUSTED_PROXIES": "none"}[k] }); s.trusted != nil {
		t.Errorf("TRUSTED_PROXIES=none trusts %v", s.trusted)
	}
}

// TestSlowHeadersCutOff: a client that sends half its headers and waits
// (slowloris) is disconnected at HEADER_TIMEOUT.
func TestSlowHeadersCutOff(t *testing.T) {
	pg := testenv.StartPostgres(t)
	p := startBinary(t, "DATABASE_URL="+pg.URL, "HEADER_TIMEOUT=300ms")
	p.waitListening(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n") // and never the blank line
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	io.Copy(io.Discard, c) // returns when the server closes
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a client trickling its headers held its connection for %s", took)
	}
}

// TestShutdownFlushWithDatabaseDown: PostgreSQL is down when redirects are
// answered and at SIGTERM, and a slow client holds the drain for its
// whole budget; PostgreSQL comes back within the flush's own budget and
// every answered redirect's click is stored.
func TestShutdownFlushWithDatabaseDown(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	p := startBinary(t, "DATABASE_URL="+pg.URL, "CACHE_URL="+rd.URL, "SHUTDOWN_DELAY=0s", "DRAIN_TIMEOUT=3s", "FLUSH_TIMEOUT=15s")
	p.waitListening(t)
	post(t, p.url+"/users", `{"username":"ada","email":"ada@example.com"}`)
	out := post(t, p.url+"/urls", `{"user_id":1,"original_url":"https://example.com/"}`)
	code := out[strings.Index(out, `"short_code":"`)+14:]
	code = code[:strings.IndexByte(code, '"')]
	if c, err := get(p.url + "/" + code); err != nil || c != 302 { // cached from now on
		t.Fatalf("first redirect: %d %v", c, err)
	}
	pg.Stop()
	var answered atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := get(p.url + "/" + code); err == nil && c == 302 {
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	if answered.Load() == 0 {
		t.Fatal("no redirect answered with the database down: the test would prove nothing")
	}
	// A slow upload keeps a request in flight through the drain.
	slow, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "POST /users/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 1000000\r\n\r\nid,")
	time.Sleep(200 * time.Millisecond)

	p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(5 * time.Second) // past the drain's budget
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	p.waitExit(t, 30*time.Second)
	want := 1 + int(answered.Load())
	if n := count(t, pg.URL, "SELECT COUNT(*) FROM events WHERE event_type = 'click'"); n != want {
		t.Fatalf("%d clicks stored, want %d (every answered redirect's)", n, want)
	}
}
