package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/liftoff-dev/liftoff/app/telemetry"
)

// TestAccessLogSampling: every error and slow request is logged, every
// request up to AccessLogRate lines a second, then one in N of the fast
// successful ones, each line with its request id.
func TestAccessLogSampling(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{Log: slog.New(slog.NewJSONHandler(&buf, nil)), Tracer: noop.NewTracerProvider().Tracer("t"),
		Metrics: telemetry.NewMetrics("t", "blue", nil, func() int { return 0 }, 1), AccessLogSample: 10, AccessLogRate: 5, SlowRequest: 50 * time.Millisecond}
	h := s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			w.WriteHeader(http.StatusNotFound)
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			time.Sleep(60 * time.Millisecond)
		}
	}))
	get := func(path string) {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, path, nil))
		if rr.Header().Get("X-Request-ID") == "" {
			t.Fatalf("%s: no X-Request-ID", path)
		}
	}
	for range 100 {
		get("/ok")
	}
	get("/missing")
	get("/fail")
	get("/slow")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	count := map[string]int{}
	for _, l := range lines {
		for _, p := range []string{"/ok", "/missing", "/fail", "/slow"} {
			if strings.Contains(l, `"path":"`+p+`"`) && strings.Contains(l, `"request_id":"`) {
				count[p]++
			}
		}
	}
	// The first 5 in full, then the tenth ones of the other 95 (10): 15,
	// and up to 5 more when the 100 requests straddle a second.
	if count["/ok"] < 15 || count["/ok"] > 20 || count["/missing"] != 1 || count["/fail"] != 1 || count["/slow"] != 1 {
		t.Errorf("logged %v, want 15 to 20 of 100 fast successes and every error and slow request", count)
	}
}
