package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var fuzzMethods = []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"}

var fuzzPaths = []string{"/users", "/users/1", "/users/bulk", "/urls", "/urls/1", "/events", "/health", "/ready", "/abc123", "/users/-1", "/urls/99999999999999999999"}

// FuzzAPI sends arbitrary bodies (and queries) to every route: whatever the
// input, the answer is never a 5xx and every non-redirect error is JSON.
// `go test` runs the seed corpus; `go test -fuzz FuzzAPI ./app/api` explores.
func FuzzAPI(f *testing.F) {
	pg := testenv.StartPostgres(f)
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: pg.URL, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { svc.Shutdown(nil, 0, 10*time.Second) })
	h := svc.Handler()
	// A user and a link so that references can resolve.
	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/users", strings.NewReader(`{"username":"seed","email":"seed@example.com"}`)),
		httptest.NewRequest("POST", "/urls", strings.NewReader(`{"user_id":1,"original_url":"https://example.com"}`)),
	} {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	seeds := []string{
		`{"username":"a","email":"a@b.co"}`, `{"username":1,"email":[]}`, `{"user_id":1,"original_url":"https://x.io","title":"t"}`,
		`{"user_id":1e400,"original_url":"http://"}`, `{"user_id":-1}`, `{"url_id":1,"user_id":1,"event_type":"x","details":{"a":[1,{"b":null}]}}`,
		`{"details":"str"}`, `{"is_active":null}`, `{"title":"\u0000"}`, `[]`, `"x"`, `null`, `{`, `{"a":1}{`, "\xff\xfe", ``,
		`{"username":"` + strings.Repeat("é", 100) + `","email":"x@y.z"}`, `{"original_url":"https://` + strings.Repeat("a", 3000) + `"}`,
		`{"user_id":9223372036854775808,"original_url":"https://x.io"}`, `{"user_id":1.5,"original_url":"https://x.io"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), uint8(i*7), s, "page=1&per_page=2")
	}
	f.Add(uint8(0), uint8(0), "", "page=-1")
	f.Add(uint8(0), uint8(2), "", "user_id=abc&is_active=maybe")
	f.Add(uint8(1), uint8(1), `{"email":"new@x.io"}`, "per_page=100000")

	f.Fuzz(func(t *testing.T, m, p uint8, body, query string) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		path := fuzzPaths[int(p)%len(fuzzPaths)]
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s %s?%s %q took %s", method, path, query, body, d)
		}
		if rec.Code >= 500 {
			t.Fatalf("%s %s?%s %q: %d %s", method, path, query, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != "HEAD" && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s: error %d is not JSON: %q", method, path, rec.Code, rec.Body)
		}
	})
}
