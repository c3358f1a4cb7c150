package testenv

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an in-process OCI registry on loopback that records requests.
type Registry struct {
	// Host is host:port, for references like Host + "/app".
	Host string
	// Username and Password, when set, are required (basic auth).
	Username, Password string
	// Fail, when it returns true for a request, answers 500 instead.
	Fail func(r *http.Request) bool

	mu       sync.Mutex
	requests []string
	srv      *httptest.Server
}

// StartRegistry starts a registry on a free port and stops it with the test.
func StartRegistry(t testing.TB) *Registry { return StartRegistryOn(t, 0) }

// StartRegistryOn starts a registry on a given loopback port (0: any).
func StartRegistryOn(t testing.TB, port int) *Registry {
	t.Helper()
	r, err := NewRegistry(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("registry on port %d: %v", port, err)
	}
	t.Cleanup(r.Close)
	return r
}

// NewRegistry starts a registry listening on addr (host:port, port 0 for
// any); Close stops it.
func NewRegistry(addr string) (*Registry, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Registry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req.Method+" "+req.URL.Path)
		fail, user, pass := r.Fail, r.Username, r.Password
		r.mu.Unlock()
		if user != "" {
			u, p, ok := req.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		if fail != nil && fail(req) {
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}`, http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, req)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	r.srv = srv
	r.Host = strings.TrimPrefix(srv.URL, "http://")
	return r, nil
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// Requests returns "METHOD /path" of every request so far, and forgets them.
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.requests
	r.requests = nil
	return out
}

// Count counts requests whose "METHOD /path" contains every fragment.
func Count(reqs []string, fragments ...string) int {
	n := 0
	for _, q := range reqs {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(q, f)
		}
		if ok {
			n++
		}
	}
	return n
}
