package api_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// metric reads one sample from /metrics, e.g. `shortener_cache_lookups_total{result="hit"}`.
func (a *app) metric(t *testing.T, series string) float64 {
	t.Helper()
	res, err := http.Get(a.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+-]+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func location(t *testing.T, a *app, code string) string {
	t.Helper()
	r := a.do("GET", "/"+code, "")
	if r.status == 404 {
		return "404"
	}
	if r.status != 302 {
		t.Fatalf("redirect %s: %d %s", code, r.status, r.body)
	}
	return r.header.Get("Location")
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCacheInvalidationAcrossReplicas: two replicas share PostgreSQL and
// Redis; a change made through one is seen by the other within milliseconds (invalidation pushes are asynchronous), whose copy
// lived in its own memory.
func TestCacheInvalidationAcrossReplicas(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	a := startApp(t, pg.URL, rd.URL, events.Options{})
	b := startApp(t, pg.URL, rd.URL, events.Options{})
	eventually(t, "cache up", func() bool { return a.metric(t, "shortener_cache_up") == 1 && b.metric(t, "shortener_cache_up") == 1 })

	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	u := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://one.example/"}`, uid))).obj(t)
	code, id := u["short_code"].(string), int(u["id"].(float64))

	for range 3 { // warm both replicas' memory
		if location(t, a, code) != "https://one.example/" || location(t, b, code) != "https://one.example/" {
			t.Fatal("wrong target")
		}
	}
	if hits := b.metric(t, `shortener_cache_lookups_total{result="hit"}`); hits < 2 {
		t.Fatalf("replica b served no hits from cache: %v", hits)
	}

	// Invalidations reach the other replica's client-side cache as RESP3
	// pushes, asynchronously: within milliseconds, not within the same instant.
	a.must(200, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"original_url":"https://two.example/"}`))
	eventually(t, "b sees the update made through a", func() bool { return location(t, b, code) == "https://two.example/" })
	b.must(200, b.do("PUT", fmt.Sprintf("/urls/%d", id), `{"is_active":false}`))
	eventually(t, "a sees the deactivation made through b", func() bool { return location(t, a, code) == "404" })
	a.must(200, a.do("PUT", fmt.Sprintf("/urls/%d", id), `{"is_active":true}`))
	location(t, b, code)
	a.must(200, a.do("DELETE", fmt.Sprintf("/urls/%d", id), ""))
	eventually(t, "b sees the delete made through a", func() bool { return location(t, b, code) == "404" })
	// Deleting a user invalidates their links too.
	u2 := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://three.example/"}`, uid))).obj(t)
	location(t, b, u2["short_code"].(string))
	a.must(200, a.do("DELETE", fmt.Sprintf("/users/%d", uid), ""))
	eventually(t, "b sees the user's links gone", func() bool { return location(t, b, u2["short_code"].(string)) == "404" })
}

// TestCacheDown: with Redis gone, redirects still work from the database and
// the metrics say so; when Redis returns, the cache comes back by itself.
func TestCacheDown(t *testing.T) {
	pg, rd := testenv.StartPostgres(t), testenv.StartRedis(t)
	a := startApp(t, pg.URL, rd.URL, events.Options{})
	eventually(t, "cache up", func() bool { return a.metric(t, "shortener_cache_up") == 1 })
	uid := int(a.must(201, a.do("POST", "/users", `{"username":"ada","email":"ada@example.com"}`)).obj(t)["id"].(float64))
	code := a.must(201, a.do("POST", "/urls", fmt.Sprintf(`{"user_id":%d,"original_url":"https://x.example/"}`, uid))).obj(t)["short_code"].(string)
	location(t, a, code)

	rd.Kill()
	for i := range 50 {
		if got := location(t, a, code); got != "https://x.example/" {
			t.Fatalf("request %d with the cache down: %s", i, got)
		}
	}
	if up := a.metric(t, "shortener_cache_up"); up != 0 {
		t.Errorf("shortener_cache_up = %v with Redis down", up)
	}
	if errs := a.metric(t, `shortener_cache_lookups_total{result="error"}`); errs < 1 {
		t.Errorf("cache errors not counted: %v", errs)
	}
	if m := a.must(200, a.do("GET", "/ready", "")).obj(t); m["cache"] != "down" {
		t.Errorf("ready: %v", m)
	}

	if err := rd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cache back", func() bool { location(t, a, code); return a.metric(t, "shortener_cache_up") == 1 })
	before := a.metric(t, `shortener_cache_lookups_total{result="hit"}`)
	eventually(t, "hits again", func() bool {
		location(t, a, code)
		return a.metric(t, `shortener_cache_lookups_total{result="hit"}`) > before
	})
}
