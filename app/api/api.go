// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/liftoff-dev/liftoff/app/cache"
	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/telemetry"
)

// Server holds the API's dependencies.
type Server struct {
	Store   *store.Store
	Cache   *cache.Cache // nil without CACHE_URL
	Events  *events.Buffer
	Metrics *telemetry.Metrics
	Log     *slog.Logger
	Tracer  trace.Tracer
	// Version and Slot say which release answers GET / (a blue-green slot
	// is "blue" or "green"; empty outside a rollout).
	Version, Slot string

	// EnqueueWait is how long a redirect waits for room in a full event
	// buffer before answering 503. Defaults to 2s.
	EnqueueWait time.Duration
	// MaxList caps listings without pagination. Defaults to 10000.
	MaxList int
	// AccessLogSample logs one in this many fast, successful requests
	// (every error, every slow request, and every request at debug level
	// are logged). Defaults to 100; 1 logs them all.
	AccessLogSample uint64
	// SlowRequest is the duration from which a request is always logged. Defaults to 500ms.
	SlowRequest time.Duration

	series     sync.Map // routeKey -> routeMetrics
	draining   atomic.Bool
	migrated   atomic.Bool
	requestSeq atomic.Uint64
}

// Drain makes /ready fail, so load balancers stop sending traffic before shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Handler returns the API with its middleware.
func (s *Server) Handler() http.Handler {
	if s.EnqueueWait <= 0 {
		s.EnqueueWait = 2 * time.Second
	}
	if s.AccessLogSample == 0 {
		s.AccessLogSample = 100
	}
	if s.SlowRequest <= 0 {
		s.SlowRequest = 500 * time.Millisecond
	}
	if s.MaxList <= 0 {
		s.MaxList = 10000
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))

	mux.HandleFunc("POST /users/bulk", s.bulkUsers)
	mux.HandleFunc("GET /users", s.listUsers)
	mux.HandleFunc("POST /users", s.createUser)
	mux.HandleFunc("GET /users/{id}", s.getUser)
	mux.HandleFunc("PUT /users/{id}", s.updateUser)
	mux.HandleFunc("DELETE /users/{id}", s.deleteUser)

	mux.HandleFunc("GET /urls", s.listURLs)
	mux.HandleFunc("POST /urls", s.createURL)
	mux.HandleFunc("GET /urls/{id}", s.getURL)
	mux.HandleFunc("PUT /urls/{id}", s.updateURL)
	mux.HandleFunc("DELETE /urls/{id}", s.deleteURL)

	mux.HandleFunc("GET /events", s.listEvents)
	mux.HandleFunc("POST /events", s.createEvent)

	mux.HandleFunc("GET /{code}", s.redirect)
	mux.HandleFunc("GET /{$}", s.root)
	return s.middleware(mux)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready: the database answers and the schema is current, and we are not draining.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, errStatus(http.StatusServiceUnavailable, "shutting down"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		writeError(w, errStatus(http.StatusServiceUnavailable, "database unreachable"))
		return
	}
	if !s.migrated.Load() {
		v, err := migrate.Current(ctx, s.Store.Pool)
		if err != nil || v < migrate.Latest() {
			writeError(w, errStatus(http.StatusServiceUnavailable, "migrations not applied"))
			return
		}
		s.migrated.Store(true)
	}
	cacheState := "none"
	if s.Cache != nil {
		cacheState = "down"
		if s.Cache.Up() {
			cacheState = "up"
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "cache": cacheState})
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	info := map[string]string{"service": "shortener", "docs": "https://github.com/liftoff-dev/liftoff/blob/main/docs/api.md"}
	if s.Version != "" {
		info["version"] = s.Version
	}
	if s.Slot != "" {
		info["slot"] = s.Slot
	}
	writeJSON(w, http.StatusOK, info)
}

// page reads ?page=&per_page= (1-based). Without either, a listing returns
// everything up to MaxList; page alone uses 20 per page.
func (s *Server) page(r *http.Request, f fields) store.Page {
	q := r.URL.Query()
	pageS, perS := q.Get("page"), q.Get("per_page")
	if pageS == "" && perS == "" {
		return store.Page{Limit: s.MaxList}
	}
	page, per := 1, 20
	if pageS != "" {
		n, err := strconv.Atoi(pageS)
		if err != nil || n < 1 {
			f["page"] = "must be a whole number from 1"
		}
		page = n
	}
	if perS != "" {
		n, err := strconv.Atoi(perS)
		if err != nil || n < 1 || n > 1000 {
			f["per_page"] = "must be a whole number from 1 to 1000"
		}
		per = n
	}
	return store.Page{Limit: per, Offset: (page - 1) * per}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae)
	case errors.As(err, &ce):
		writeError(w, &apiError{Status: http.StatusConflict, Msg: ce.Error(), Fields: map[string]string{ce.Field: "already exists"}})
	case errors.Is(err, context.Canceled):
		writeError(w, errStatus(499, "request cancelled"))
	default:
		s.Log.ErrorContext(r.Context(), "request failed", "error", err.Error(), "route", r.Pattern)
		writeError(w, errStatus(http.StatusInternalServerError, "internal error"))
	}
}

// invalidate drops codes from the cache after a committed change. If the
// cache cannot be told, its short local and server TTLs bound the staleness.
func (s *Server) invalidate(ctx context.Context, codes ...string) {
	if err := s.Cache.Invalidate(ctx, codes...); err != nil {
		s.Log.WarnContext(ctx, "cache invalidation failed; entries expire on their TTL", "error", err.Error())
	}
}

// reply answers a store call on one resource: 404 naming what when there is
// none, the failure when the call failed, otherwise status with out(v).
func reply[T, J any](s *Server, w http.ResponseWriter, r *http.Request, what string, status int, v T, err error, out func(T) J) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, errStatus(http.StatusNotFound, "%s not found", what))
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, status, out(v))
	}
}

// listing answers a listing: its filters (f, already read) and paging
// checked, the rows fetched, each rendered by out.
func listing[T, J any](s *Server, w http.ResponseWriter, r *http.Request, f fields, fetch func(context.Context, store.Page) ([]T, error), out func(T) J) {
	p := s.page(r, f)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	rows, err := fetch(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	items := make([]J, len(rows))
	for i, v := range rows {
		items[i] = out(v)
	}
	writeJSON(w, http.StatusOK, items)
}
