package rollout

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestSmokeAgainstTheApp runs the smoke test against a real shortener.
func TestSmokeAgainstTheApp(t *testing.T) {
	pg := testenv.StartPostgres(t)
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: pg.URL, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(nil, 0, 10*time.Second)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	if err := Smoke(context.Background(), noFollow, srv.URL); err != nil {
		t.Fatal(err)
	}
	// It cleans up after itself: the smoke user (and, by cascade, its link) is gone.
	res, _ := http.Get(srv.URL + "/users")
	b, _ := io.ReadAll(res.Body)
	if strings.Contains(string(b), "liftoff-smoke") {
		t.Errorf("smoke user left behind: %s", b)
	}

	// An app that answers but misbehaves fails the smoke test.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/urls" {
			http.Error(w, `{"error":"boom"}`, 500)
			return
		}
		svc.Handler().ServeHTTP(w, r)
	}))
	defer broken.Close()
	if err := Smoke(context.Background(), noFollow, broken.URL); err == nil || errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "POST /urls") {
		t.Errorf("broken app: %v", err)
	}
	// Nothing listening, or the API server unable to reach the pods: unreachable.
	if err := Smoke(context.Background(), noFollow, "http://127.0.0.1:1"); !errors.Is(err, ErrUnreachable) {
		t.Errorf("nothing listening: %v", err)
	}
	proxyErr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.5:8080: i/o timeout"}`)
	}))
	defer proxyErr.Close()
	if err := Smoke(context.Background(), noFollow, proxyErr.URL); !errors.Is(err, ErrUnreachable) {
		t.Errorf("API server proxy error: %v", err)
	}
}

// TestSmokeThroughServiceProxy checks the engine's wiring: the smoke test
// goes through the API server's service proxy path for the preview Service.
// A stand-in API server on loopback forwards that path to a real shortener,
// or answers as the API server does when it cannot reach the pods.
func TestSmokeThroughServiceProxy(t *testing.T) {
	pg := testenv.StartPostgres(t)
	svc, err := service.Start(context.Background(), service.Config{DatabaseURL: pg.URL, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(nil, 0, 10*time.Second)
	reachable := true
	const prefix = "/api/v1/namespaces/shop/services/http:shortener-preview:http/proxy"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, prefix) {
			http.NotFound(w, r)
			return
		}
		if !reachable {
			w.WriteHeader(503)
			io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"error trying to reach service: dial tcp 10.244.0.5:8080: connect: connection refused"}`)
			return
		}
		r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
		svc.Handler().ServeHTTP(w, r)
	}))
	defer api.Close()
	rec := &recorder{t: t}
	e := &Client{Ref: AppRef{Namespace: "shop", App: "shortener"}, Rest: &rest.Config{Host: api.URL}, Log: rec, Smoke: SmokeOn}
	if err := e.smoke(context.Background()); err != nil {
		t.Fatalf("smoke through the proxy: %v", err)
	}
	if !rec.has("smoke test passed") {
		t.Error("no success line")
	}
	reachable = false
	e.Smoke = SmokeAuto
	if err := e.smoke(context.Background()); err != nil || !rec.has("smoke test skipped") {
		t.Errorf("auto mode, pods unreachable: %v", err)
	}
	e.Smoke = SmokeOn
	if err := e.smoke(context.Background()); err == nil {
		t.Error("on mode accepted unreachable pods")
	}
}
