// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
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

	// EnqueueWait bounds how long a redirect waits for its click: for room
	// in a full buffer (then it answers 503), and with DurableClicks for
	// the write (then it answers the redirect anyway; see recordClick).
	// Defaults to 2s.
	EnqueueWait time.Duration
	// DurableClicks answers a redirect only once its click is written (a
	// group commit: the redirects waiting together share one write), so an
	// acknowledged click is durable and any replica lists it at once.
	// Without it, a click is acknowledged from the buffer.
	DurableClicks bool
	// MaxList caps a listing's rows (with or without pagination); a page
	// asks for at most this many. Defaults to 1000.
	MaxList int
	// Listings bounds the listings answered at once (their rows are in
	// memory until written). Defaults to 4.
	Listings int
	// AccessLogSample logs one in this many fast, successful requests once
	// AccessLogRate lines a second are logged: while the app is quiet every
	// request is logged. Every error, slow request, and every request at
	// debug level is logged. Defaults to 100 and 20; AccessLogSample 1
	// logs them all.
	AccessLogSample uint64
	AccessLogRate   int64
	// SlowRequest is the duration from which a request is always logged. Defaults to 500ms.
	SlowRequest time.Duration
	// RequestTimeout bounds a request's work (its context); bulk imports
	// get BulkTimeout. Defaults to 10s and 60s.
	RequestTimeout, BulkTimeout time.Duration
	// WriteLimit limits each client's writes (POST, PUT, PATCH, DELETE),
	// RedirectLimit its redirects; nil or a zero Rate does not limit.
	WriteLimit, RedirectLimit *Limiter
	// TrustedProxies are the ingress's addresses: from them, the client
	// is read from X-Forwarded-For (ClientIP).
	TrustedProxies []netip.Prefix
	// Faults, for drills only, make this release misbehave (FAULT_INJECT).
	Faults *Faults

	series     sync.Map // routeKey -> routeMetrics
	draining   atomic.Bool
	migrated   atomic.Bool
	requestSeq atomic.Uint64
	listSlots  chan struct{}
	logWindow  atomic.Int64 // the second the access log counts lines in
	logLines   atomic.Int64 // lines logged in that second
}

// MetricsHandler serves GET /metrics: the app serves it on a listener of
// its own (METRICS_ADDR), which the public entry point never reaches.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))
	return mux
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
		s.MaxList = 1000
	}
	if s.Listings <= 0 {
		s.Listings = 4
	}
	s.listSlots = make(chan struct{}, s.Listings)
	if s.AccessLogRate <= 0 {
		s.AccessLogRate = 20
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = 10 * time.Second
	}
	if s.BulkTimeout <= 0 {
		s.BulkTimeout = 60 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /ready", s.ready)

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
	if s.Faults != nil {
		return s.middleware(s.Faults.around(mux))
	}
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
// up to MaxList rows; page alone uses 20 per page.
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
		if err != nil || n < 1 || n > s.MaxList {
			f["per_page"] = fmt.Sprintf("must be a whole number from 1 to %d", s.MaxList)
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
	case errors.As(err, &ce) && ce.Field != "":
		writeError(w, &apiError{Status: http.StatusConflict, Msg: ce.Error(), Fields: map[string]string{ce.Field: "already exists"}})
	case errors.As(err, &ce):
		s.Log.WarnContext(r.Context(), "conflict", "error", err.Error(), "route", r.Pattern)
		writeError(w, errStatus(http.StatusConflict, "a value that must be unique already exists"))
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
// checked, the rows fetched, each rendered by out and written as it is
// encoded. At most Listings run at once: a page of rows is in memory until
// it is written, and the pod's memory is bounded.
func listing[T, J any](s *Server, w http.ResponseWriter, r *http.Request, f fields, fetch func(context.Context, store.Page, func(T) error) error, out func(T) J) {
	p := s.page(r, f)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	select {
	case s.listSlots <- struct{}{}:
		defer func() { <-s.listSlots }()
	case <-r.Context().Done():
		w.Header().Set("Retry-After", "1")
		writeError(w, errStatus(http.StatusServiceUnavailable, "too many listings at once; retry"))
		return
	}
	// Rows go out as the database sends them: the pod holds one row and a
	// 32 KiB buffer per listing, whatever the rows weigh (events written
	// before details were bounded can be large).
	bw := bufio.NewWriterSize(w, 32<<10)
	started := false
	err := fetch(r.Context(), p, func(v T) error {
		b, err := json.Marshal(out(v))
		if err != nil {
			return err
		}
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			bw.WriteByte('[')
			started = true
		} else {
			bw.WriteByte(',')
		}
		_, err = bw.Write(b)
		return err
	})
	switch {
	case err != nil && !started:
		s.fail(w, r, err)
	case err != nil:
		// Half a page is out with a 200: end the connection, so the client
		// sees a failed response rather than a short, valid-looking one.
		s.Log.ErrorContext(r.Context(), "listing cut short", "error", err.Error())
		bw.Flush()
		panic(http.ErrAbortHandler)
	case !started:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		bw.WriteString("[]\n")
	default:
		bw.WriteString("]\n")
	}
	bw.Flush()
}
