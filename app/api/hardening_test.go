package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liftoff-dev/liftoff/app/api"
	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/validate"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestMethodLabelFixed: a client sending made-up methods adds no series;
// every method label comes from a fixed set.
func TestMethodLabelFixed(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("M%03d", i), a.url+"/users", nil)
		a.send(req)
	}
	a.do("GET", "/users", "")
	res, err := http.Get(a.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	methods := map[string]bool{}
	for _, m := range regexp.MustCompile(`shortener_http_requests_total\{[^}]*method="([^"]*)"`).FindAllStringSubmatch(string(body), -1) {
		methods[m[1]] = true
	}
	if !methods["GET"] || !methods["other"] || len(methods) != 2 {
		t.Errorf("method labels %v, want GET and other only", methods)
	}
}

// TestImportedIDsBounded: a bulk import naming an id at the top of bigint
// is refused for that row, and new users still get ids.
func TestImportedIDsBounded(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	csv := "id,username,email,created_at\n9223372036854775807,top,top@x.io,2025-01-01 00:00:00\n7,ok,ok@x.io,2025-01-01 00:00:00\n"
	r := a.upload("/users/bulk", "file", "u.csv", []byte(csv))
	if m := r.obj(t); m["count"] != float64(1) || m["rejected"] != float64(1) {
		t.Fatalf("bulk: %d %s", r.status, r.body)
	}
	if u := a.must(201, a.do("POST", "/users", `{"username":"next","email":"next@x.io"}`)).obj(t); u["id"] != float64(8) {
		t.Errorf("new user after the import: id %v, want 8", u["id"])
	}
}

// TestRefusedInput: user info in a URL, oversized event details and pages
// beyond the cap are refused, naming the field.
func TestRefusedInput(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	for _, u := range []string{"https://bank.example@evil.example/", "https://user:pw@example.com/"} {
		expectError(t, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":%q}`, uid, u)), invalidStatus, "original_url")
	}
	big := strings.Repeat("x", validate.MaxDetails)
	expectError(t, a.do("POST", "/events", fmt.Sprintf(`{"user_id":%d,"event_type":"view","details":{"note":%q}}`, uid, big)), invalidStatus, "details")
	expectError(t, a.do("GET", "/users?page=1&per_page=1001", ""), invalidStatus, "per_page")
}

// TestListingCapped: a listing without paging returns at most MaxList rows.
func TestListingCapped(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a := startApp(t, pg.URL, "", events.Options{})
	exec(t, pg.URL, "INSERT INTO users (username, email) SELECT 'u' || i, 'u' || i || '@x.io' FROM generate_series(1, 1500) i")
	var users []map[string]any
	a.must(200, a.do("GET", "/users", "")).json(t, &users)
	if len(users) != 1000 {
		t.Errorf("%d users listed, want the cap of 1000", len(users))
	}
}

// TestRequestDeadline: a request behind a locked table ends at the
// request's deadline instead of holding its goroutine and connection.
func TestRequestDeadline(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a := startApp(t, pg.URL, "", events.Options{}, func(s *api.Server) { s.RequestTimeout = time.Second })
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := a.do("GET", "/users", "")
	took := time.Since(start)
	if r.status < 500 || took > 5*time.Second {
		t.Fatalf("GET /users behind a lock: %d after %s, want a 5xx at the 1s deadline: %s", r.status, took, r.body)
	}
}

// TestClicksReadYourWrites: with durable clicks, a click served by one
// replica is listed at once by another, and a redirect waits for it.
func TestClicksReadYourWrites(t *testing.T) {
	pg := testenv.StartPostgres(t)
	slow := events.Options{MaxDelay: time.Hour, MaxBatch: 100000} // nothing leaves the buffer by time
	durable := func(s *api.Server) { s.DurableClicks = true }
	a, b := startApp(t, pg.URL, "", slow, durable), startApp(t, pg.URL, "", slow, durable)
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	u := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/x"}`, uid))).obj(t)
	code, id := u["short_code"].(string), int(u["id"].(float64))
	for i := range 20 {
		a.must(302, a.do("GET", "/"+code, ""))
		var clicks []any
		b.must(200, b.do("GET", fmt.Sprintf("/events?url_id=%d&event_type=click", id), "")).json(t, &clicks)
		if len(clicks) != i+1 {
			t.Fatalf("after %d redirects on one replica, the other lists %d clicks", i+1, len(clicks))
		}
	}
}

// TestSlowDatabaseRedirects: with the database gone, a cached redirect is
// still answered (its click queued, counted late) and written once the
// database is back.
func TestSlowDatabaseRedirects(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	a := startApp(t, pg.URL, rd.URL, events.Options{Retry: 50 * time.Millisecond}, func(s *api.Server) {
		s.DurableClicks, s.EnqueueWait = true, 300*time.Millisecond
	})
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	code := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/x"}`, uid))).obj(t)["short_code"].(string)
	// Cached now: a busy machine can time out the first write to the
	// cache, so redirect until one is answered from it.
	clicks := 0
	for deadline := time.Now().Add(10 * time.Second); a.metric(t, `shortener_cache_lookups_total{result="hit"}`) < 1; clicks++ {
		if time.Now().After(deadline) {
			t.Fatal("the link never reached the cache")
		}
		a.must(302, a.do("GET", "/"+code, ""))
	}
	pg.Stop()
	for range 3 {
		a.must(302, a.do("GET", "/"+code, ""))
	}
	if v := a.metric(t, "shortener_clicks_late_total"); v != 3 {
		t.Errorf("late clicks %v, want 3", v)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the queued clicks written", func() bool {
		return count(t, pg.URL, "SELECT COUNT(*) FROM events WHERE event_type = 'click'") == clicks+3
	})
}

// TestRateLimits: writes past a client's budget get 429 with Retry-After;
// X-Forwarded-For counts only from a trusted proxy.
func TestRateLimits(t *testing.T) {
	pg := testenv.StartPostgres(t)
	limit := func(trusted ...netip.Prefix) func(*api.Server) {
		return func(s *api.Server) {
			s.WriteLimit, s.TrustedProxies = &api.Limiter{Rate: 1, Burst: 3, Now: time.Now}, trusted
		}
	}
	direct, proxied := startApp(t, pg.URL, "", events.Options{}, limit()), startApp(t, pg.URL, "", events.Options{}, limit(netip.MustParsePrefix("127.0.0.0/8")))
	n := 0
	post := func(a *app, xff string) resp {
		n++
		req, _ := http.NewRequest("POST", a.url+"/users", strings.NewReader(fmt.Sprintf(`{"username":"u%d","email":"u%d@x.io"}`, n, n)))
		req.Header.Set("Content-Type", "application/json")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		return a.send(req)
	}
	var codes []int
	for i := range 5 { // a spoofed header from an untrusted peer changes nothing
		codes = append(codes, post(direct, fmt.Sprintf("10.9.9.%d", i)).status)
	}
	if fmt.Sprint(codes) != "[201 201 201 429 429]" {
		t.Fatalf("statuses %v, want 3 then 429s", codes)
	}
	r := post(direct, "")
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("limited write: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	direct.must(200, direct.do("GET", "/users", "")) // reads are not limited

	// Behind a trusted proxy, each forwarded client has its own bucket.
	for i := range 5 {
		if r := post(proxied, fmt.Sprintf("192.0.2.%d", i)); r.status != 201 {
			t.Errorf("forwarded client %d: %d %s", i, r.status, r.body)
		}
	}
}

// TestClientIP: the forwarded address is read from the right, past the
// trusted hops only.
func TestClientIP(t *testing.T) {
	trusted, _ := api.ParsePrefixes("10.0.0.0/8")
	for _, c := range []struct{ remote, xff, want string }{
		{"203.0.113.5:1", "1.2.3.4", "203.0.113.5"},    // untrusted peer: header ignored
		{"10.1.1.1:1", "1.2.3.4", "1.2.3.4"},           // the ingress
		{"10.1.1.1:1", "6.6.6.6, 1.2.3.4", "1.2.3.4"},  // a forged first hop
		{"10.1.1.1:1", "1.2.3.4, 10.2.2.2", "1.2.3.4"}, // two proxies
		{"10.1.1.1:1", "garbage", "10.1.1.1"},          // malformed: the proxy itself
		{"[::ffff:10.1.1.1]:1", "1.2.3.4", "1.2.3.4"},  // mapped IPv4
		{"203.0.113.5:1", "", "203.0.113.5"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := api.ClientIP(r, trusted).String(); got != c.want {
			t.Errorf("%s with %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

// TestPublicSurface: /metrics is not on the public handler, and error
// bodies name no internals.
func TestPublicSurface(t *testing.T) {
	pg := testenv.StartPostgres(t)
	a := startApp(t, pg.URL, "", events.Options{Capacity: 1, MaxDelay: time.Hour, MaxBatch: 100000}, func(s *api.Server) {
		s.EnqueueWait = 100 * time.Millisecond
	})
	if r := a.do("GET", "/metrics", ""); r.status != 404 {
		t.Errorf("GET /metrics on the public handler: %d", r.status)
	}
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	code := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/x"}`, uid))).obj(t)["short_code"].(string)
	a.must(302, a.do("GET", "/"+code, "")) // fills the one-event buffer
	r := a.do("GET", "/"+code, "")
	if r.status != 503 || r.header.Get("Retry-After") == "" || strings.Contains(string(r.body), "buffer") {
		t.Errorf("full buffer: %d %q, Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
	// A unique constraint the API does not name stays in the log.
	exec(t, pg.URL, "CREATE UNIQUE INDEX secret_internal_idx ON urls (title)")
	a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/a","title":"t"}`, uid)))
	r = a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/b","title":"t"}`, uid))
	if r.status != 409 || strings.Contains(string(r.body), "secret_internal_idx") {
		t.Errorf("conflict on an internal constraint: %d %s", r.status, r.body)
	}
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		return -1
	}
	return n
}
