package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/app/api"
	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

const seedDir = "../seed/testdata"

type app struct {
	t       *testing.T
	svc     *service.Service
	url     string
	metrics string // the metrics listener, apart from the public one
}

// startApp serves a service on dbURL (and cacheURL); configure, if any,
// sets the API's knobs before it serves.
func startApp(t *testing.T, dbURL, cacheURL string, ev events.Options, configure ...func(*api.Server)) *app {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: dbURL, CacheURL: cacheURL, Version: "test", Slot: "blue", Log: log, Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configure {
		c(svc.API)
	}
	srv := httptest.NewServer(svc.Handler())
	ms := httptest.NewServer(svc.API.MetricsHandler())
	t.Cleanup(func() {
		srv.Close()
		ms.Close()
		svc.Shutdown(nil, 0, 10*time.Second)
	})
	return &app{t: t, svc: svc, url: srv.URL, metrics: ms.URL}
}

var client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}

type resp struct {
	status int
	body   []byte
	header http.Header
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response %d is not JSON: %q", r.status, r.body)
	}
}

func (r resp) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.json(t, &m)
	return m
}

func (a *app) do(method, path, body string) resp {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(req)
}

func (a *app) send(req *http.Request) resp {
	a.t.Helper()
	res, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, b, res.Header}
}

func (a *app) upload(path, field, name string, content []byte) resp {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile(field, name)
	fw.Write(content)
	mw.Close()
	req, _ := http.NewRequest("POST", a.url+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return a.send(req)
}

func (a *app) must(status int, r resp) resp {
	a.t.Helper()
	if r.status != status {
		a.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

// expectError checks a 4xx JSON error naming the fields.
func expectError(t *testing.T, r resp, statuses []int, fields ...string) {
	t.Helper()
	ok := false
	for _, s := range statuses {
		ok = ok || r.status == s
	}
	if !ok {
		t.Errorf("status %d, want one of %v: %s", r.status, statuses, r.body)
		return
	}
	m := r.obj(t)
	if _, ok := m["error"].(string); !ok {
		t.Errorf("no error message: %s", r.body)
	}
	for _, f := range fields {
		fs, _ := m["fields"].(map[string]any)
		if _, ok := fs[f]; !ok {
			t.Errorf("error does not name field %s: %s", f, r.body)
		}
	}
}

var invalidStatus = []int{400, 422}

func TestUsers(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	a.must(200, a.do("GET", "/health", ""))
	if m := a.must(200, a.do("GET", "/ready", "")).obj(t); m["status"] != "ready" {
		t.Errorf("ready: %v", m)
	}
	u := a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)
	if u["username"] != "ada" || u["email"] != "ada@example.com" || u["id"] == nil {
		t.Errorf("created: %v", u)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", u["created_at"].(string)); err != nil {
		t.Errorf("created_at %q: %v", u["created_at"], err)
	}
	id := int(u["id"].(float64))
	a.must(200, a.do("GET", fmt.Sprintf("/users/%d", id), ""))
	expectError(t, a.do("GET", "/users/999999", ""), []int{404})
	expectError(t, a.do("GET", "/users/abc", ""), []int{400, 404})

	expectError(t, a.do("POST", "/users", `{"username":"ada","email":"other@example.com"}`), []int{409}, "username")
	expectError(t, a.do("POST", "/users", `{"username":"bob","email":"ada@example.com"}`), []int{409}, "email")
	expectError(t, a.do("POST", "/users", `{"username":123,"email":"x@example.com"}`), invalidStatus, "username")
	expectError(t, a.do("POST", "/users", `{"username":"  ","email":"x@example.com"}`), invalidStatus, "username")
	expectError(t, a.do("POST", "/users", `{"username":"carl","email":"not-an-email"}`), invalidStatus, "email")
	expectError(t, a.do("POST", "/users", `{"username":"carl"}`), invalidStatus, "email")
	expectError(t, a.do("POST", "/users", `{}`), invalidStatus, "username", "email")

	up := a.must(200, a.do("PUT", fmt.Sprintf("/users/%d", id), `{"email":"ada@lovelace.dev"}`)).obj(t)
	if up["email"] != "ada@lovelace.dev" || up["username"] != "ada" {
		t.Errorf("updated: %v", up)
	}
	expectError(t, a.do("PUT", fmt.Sprintf("/users/%d", id), `{"email":5}`), invalidStatus, "email")
	expectError(t, a.do("PUT", "/users/999999", `{"email":"z@example.com"}`), []int{404})

	for i := range 5 {
		a.must(201, a.do("POST", "/users", fmt.Sprintf(`{"username":"u%d","email":"u%d@example.com"}`, i, i)))
	}
	var all, page2 []map[string]any
	a.must(200, a.do("GET", "/users", "")).json(t, &all)
	a.must(200, a.do("GET", "/users?page=2&per_page=2", "")).json(t, &page2)
	if len(all) != 6 || len(page2) != 2 || page2[0]["id"] != all[2]["id"] {
		t.Errorf("pagination: %d users, page 2 = %v", len(all), page2)
	}
	expectError(t, a.do("GET", "/users?page=0", ""), invalidStatus, "page")
	expectError(t, a.do("GET", "/users?per_page=x", ""), invalidStatus, "per_page")

	if r := a.do("DELETE", fmt.Sprintf("/users/%d", id), ""); r.status != 200 && r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	expectError(t, a.do("GET", fmt.Sprintf("/users/%d", id), ""), []int{404})
	expectError(t, a.do("DELETE", fmt.Sprintf("/users/%d", id), ""), []int{404})
}

func TestBulkUsers(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	csv, err := os.ReadFile(seedDir + "/users.csv")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent: the second upload counts the rows and changes nothing
		r := a.upload("/users/bulk", "file", "users.csv", csv)
		if r.status != 200 && r.status != 201 || r.obj(t)["count"] != float64(400) {
			t.Fatalf("bulk: %d %s", r.status, r.body)
		}
	}
	var users []map[string]any
	a.must(200, a.do("GET", "/users", "")).json(t, &users)
	if len(users) != 400 || users[0]["username"] != "warmharvest01" || users[0]["created_at"] != "2025-08-11T22:29:20" {
		t.Fatalf("%d users, first %v", len(users), users[0])
	}
	// Seed ids are kept, and the sequence moved past them.
	if u := a.must(201, a.do("POST", "/users", `{"username":"newbie","email":"newbie@example.com"}`)).obj(t); u["id"] != float64(401) {
		t.Errorf("new user id %v, want 401", u["id"])
	}
	// Duplicate usernames inside a file: counted, stored once.
	dup := "id,username,email,created_at\n900,twin,a@x.io,2025-01-01 00:00:00\n901,twin,b@x.io,2025-01-01 00:00:00\n902,bad row,not-email,2025-01-01 00:00:00\n"
	r := a.upload("/users/bulk", "file", "dup.csv", []byte(dup))
	if m := r.obj(t); m["count"] != float64(2) || m["rejected"] != float64(1) {
		t.Errorf("dup upload: %s", r.body)
	}
	a.must(200, a.do("GET", "/users/900", ""))
	expectError(t, a.do("GET", "/users/901", ""), []int{404})
	expectError(t, a.upload("/users/bulk", "other", "x.csv", csv), invalidStatus, "file")
	expectError(t, a.upload("/users/bulk", "file", "x.csv", []byte("name,mail\nx,y\n")), invalidStatus, "file")
}

func TestURLs(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	body := fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/a?b=c","title":"Example"}`, uid)
	u1 := a.must(201, a.do("POST", "/urls", body)).obj(t)
	u2 := a.must(201, a.do("POST", "/urls", body)).obj(t) // no de-duplication
	code := u1["short_code"].(string)
	if len(code) < 6 || strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" || u1["is_active"] != true {
		t.Errorf("created: %v", u1)
	}
	if u2["short_code"] == code {
		t.Error("same original_url got the same code")
	}
	for _, key := range []string{"id", "user_id", "short_code", "original_url", "title", "is_active", "created_at", "updated_at"} {
		if _, ok := u1[key]; !ok {
			t.Errorf("url lacks %s", key)
		}
	}
	// The six edge cases of original_url, plus non-strings.
	for _, bad := range []string{`"hello"`, `"not-a-url"`, `"example.com"`, `"javascript:alert(1)"`, `""`, `42`, `null`, `["https://x.io"]`, `"ftp://x.io/f"`, `"https://"`} {
		expectError(t, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":%s}`, uid, bad)), invalidStatus, "original_url")
	}
	expectError(t, a.do("POST", "/urls", `{"user_id":999999,"original_url":"https://x.io"}`), []int{404, 400, 422})
	expectError(t, a.do("POST", "/urls", `{"user_id":"1","original_url":"https://x.io"}`), invalidStatus, "user_id")
	expectError(t, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://x.io","title":7}`, uid)), invalidStatus, "title")

	var evs []map[string]any
	a.must(200, a.do("GET", fmt.Sprintf("/events?url_id=%v&event_type=created", u1["id"]), "")).json(t, &evs)
	if len(evs) != 1 || evs[0]["details"].(map[string]any)["short_code"] != code {
		t.Errorf("created event: %v", evs)
	}

	id := int(u1["id"].(float64))
	time.Sleep(10 * time.Millisecond)
	up := a.must(200, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"title":"New","is_active":false}`)).obj(t)
	if up["title"] != "New" || up["is_active"] != false || up["updated_at"].(string) <= u1["updated_at"].(string) {
		t.Errorf("update did not advance updated_at: before %v after %v", u1["updated_at"], up["updated_at"])
	}
	expectError(t, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"is_active":"yes"}`), invalidStatus, "is_active")
	expectError(t, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"original_url":"nope"}`), invalidStatus, "original_url")
	expectError(t, a.do("PUT", "/urls/999999", `{"title":"x"}`), []int{404})

	var active, inactive, mine []map[string]any
	a.must(200, a.do("GET", "/urls?is_active=true", "")).json(t, &active)
	a.must(200, a.do("GET", "/urls?is_active=false", "")).json(t, &inactive)
	a.must(200, a.do("GET", fmt.Sprintf("/urls?user_id=%d", uid), "")).json(t, &mine)
	if len(active) != 1 || len(inactive) != 1 || len(mine) != 2 {
		t.Errorf("filters: %d active, %d inactive, %d mine", len(active), len(inactive), len(mine))
	}
	expectError(t, a.do("GET", "/urls?is_active=maybe", ""), invalidStatus, "is_active")

	if r := a.do("DELETE", fmt.Sprintf("/urls/%d", id), ""); r.status != 200 && r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	expectError(t, a.do("GET", fmt.Sprintf("/urls/%d", id), ""), []int{404})
	a.must(200, a.do("GET", fmt.Sprintf("/events?url_id=%d&event_type=deleted", id), "")).json(t, &evs)
	if len(evs) != 1 {
		t.Errorf("deleted event: %v", evs)
	}
}

// TestRedirectAndEvents runs with a one-hour batch delay: clicks reach the
// database only through GET /events' flush, which proves read-your-writes.
func TestRedirectAndEvents(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{MaxDelay: time.Hour, MaxBatch: 100000})
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	u := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://example.com/x"}`, uid))).obj(t)
	code, id := u["short_code"].(string), int(u["id"].(float64))

	r := a.do("GET", "/"+code, "")
	if r.status != 302 && r.status != 301 || r.header.Get("Location") != "https://example.com/x" {
		t.Fatalf("redirect: %d %v", r.status, r.header)
	}
	if d := a.svc.Events.Depth(); d != 1 {
		t.Fatalf("click not buffered: depth %d", d)
	}
	// Every finished request was counted out again (the scrape has its own
	// listener and is not an API request).
	if v := a.metric(t, "shortener_http_requests_in_flight"); v != 0 {
		t.Errorf("requests in flight after three finished requests: %v, want 0", v)
	}
	var clicks []map[string]any
	a.must(200, a.do("GET", fmt.Sprintf("/events?url_id=%d&event_type=click", id), "")).json(t, &clicks)
	if len(clicks) != 1 || clicks[0]["user_id"] != float64(uid) || clicks[0]["details"].(map[string]any)["short_code"] != code {
		t.Fatalf("click not visible to the next GET /events: %v", clicks)
	}

	expectError(t, a.do("GET", "/nosuchcode", ""), []int{404})
	expectError(t, a.do("GET", "/bad%20code!", ""), []int{404})
	a.must(200, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"is_active":false}`))
	expectError(t, a.do("GET", "/"+code, ""), []int{404})
	a.must(200, a.do("GET", fmt.Sprintf("/events?url_id=%d&event_type=click", id), "")).json(t, &clicks)
	if len(clicks) != 1 {
		t.Errorf("inactive or unknown codes recorded events: %v", clicks)
	}

	// POST /events: details must be an object; references must exist.
	e := a.must(201, a.do("POST", "/events", fmt.Sprintf(`{"url_id":%d,"user_id":%d,"event_type":"share","details":{"via":"mail"}}`, id, uid))).obj(t)
	if e["details"].(map[string]any)["via"] != "mail" || e["event_type"] != "share" {
		t.Errorf("event: %v", e)
	}
	for _, d := range []string{`"a string"`, `[1,2]`, `12`, `true`} {
		expectError(t, a.do("POST", "/events", fmt.Sprintf(`{"url_id":%d,"user_id":%d,"event_type":"x","details":%s}`, id, uid, d)), invalidStatus, "details")
	}
	expectError(t, a.do("POST", "/events", fmt.Sprintf(`{"url_id":999999,"user_id":%d,"event_type":"x","details":{}}`, uid)), []int{404, 400, 422})
	expectError(t, a.do("POST", "/events", fmt.Sprintf(`{"url_id":%d,"user_id":%d,"details":{}}`, id, uid)), invalidStatus, "event_type")
	var all []map[string]any
	a.must(200, a.do("GET", fmt.Sprintf("/events?user_id=%d", uid), "")).json(t, &all)
	for _, ev := range all {
		if _, ok := ev["details"].(map[string]any); !ok {
			t.Errorf("details not an object: %v", ev)
		}
	}
	expectError(t, a.do("GET", "/events?url_id=x", ""), invalidStatus, "url_id")
}

func TestErrorsAreJSON(t *testing.T) {
	a := startApp(t, testenv.StartPostgres(t).URL, "", events.Options{})
	cases := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/no/such/route", "", 404},
		{"DELETE", "/health", "", 405},
		{"PATCH", "/users", "", 405},
		{"POST", "/users", `"just a string"`, 400},
		{"POST", "/users", `["a","b"]`, 400},
		{"POST", "/users", `{"username": "x",`, 400},
		{"POST", "/users", ``, 400},
		{"POST", "/urls", `{"user_id":1} {"again":2}`, 400},
		{"POST", "/events", `null`, 400},
		{"PUT", "/urls/1", `123`, 400},
		{"POST", "/users", `{"username":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
	}
	for _, c := range cases {
		r := a.do(c.method, c.path, c.body)
		if r.status != c.status || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %q (%s)", c.method, c.path, r.status, r.header.Get("Content-Type"), r.body)
			continue
		}
		if m := r.obj(t); m["error"] == "" {
			t.Errorf("%s %s: empty error", c.method, c.path)
		}
	}
}
