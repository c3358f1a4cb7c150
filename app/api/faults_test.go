package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	for _, bad := range []string{"errors=5", "errors=0%", "errors=101%", "delay=-1s", "delay=2m", "slow=1s", ""} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
	f, err := ParseFaults("errors=5%, delay=20ms")
	if err != nil || f.ErrorEvery != 20 || f.Delay != 20*time.Millisecond {
		t.Fatalf("%+v %v", f, err)
	}
	mux := http.NewServeMux()
	var routes []string
	ok := func(w http.ResponseWriter, r *http.Request) { routes = append(routes, r.Pattern) }
	mux.HandleFunc("GET /health", ok)
	mux.HandleFunc("GET /{code}", ok)
	h := f.around(mux)
	codes := map[int]int{}
	start := time.Now()
	for range 40 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/abc", nil))
		codes[w.Code]++
		w = httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
		if w.Code != 200 {
			t.Fatalf("/health faulted: %d", w.Code)
		}
	}
	if codes[500] != 2 || codes[200] != 38 {
		t.Errorf("errors=5%% of 40 requests: %v", codes)
	}
	if took := time.Since(start); took < 40*20*time.Millisecond {
		t.Errorf("40 delayed requests took %s", took)
	}
	if len(routes) != 78 || routes[0] != "GET /{code}" || !strings.HasPrefix(f.String(), "500 to 1 request in 20") {
		t.Errorf("routes %d %q, %s", len(routes), routes[0], f)
	}
}
