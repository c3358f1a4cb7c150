// Package api is the shortener's HTTP API, documented field for field in
// docs/api.md. Every response that is not a redirect is JSON, errors included.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/liftoff-dev/liftoff/app/cache"
	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/app/seed"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/telemetry"
	"github.com/liftoff-dev/liftoff/app/validate"
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

// Users

type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

func userOut(u store.User) userJSON {
	return userJSON{u.ID, u.Username, u.Email, ts(u.CreatedAt)}
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	username := obj.str(f, "username", true, validate.Username)
	email := obj.str(f, "email", true, validate.Email)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.CreateUser(r.Context(), *username, *email)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, userOut(u))
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.GetUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "user not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userOut(u))
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	f := fields{}
	p := s.page(r, f)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	us, err := s.Store.ListUsers(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = userOut(u)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	username := obj.str(f, "username", false, validate.Username)
	email := obj.str(f, "email", false, validate.Email)
	for k := range obj {
		if k != "username" && k != "email" {
			f[k] = "is not a field of a user (username, email)"
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.UpdateUser(r.Context(), id, username, email)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "user not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userOut(u))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	codes, err := s.Store.DeleteUser(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "user not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), codes...)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "id": id, "urls_deleted": len(codes)})
}

// bulkUsers imports a CSV of users (id,username,email,created_at). Rows that
// already exist are counted and left unchanged; malformed rows are reported.
func (s *Server) bulkUsers(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 32<<20)
	file, _, err := r.FormFile("file")
	if err != nil {
		writeError(w, &apiError{Status: http.StatusBadRequest, Msg: "expected multipart/form-data with a CSV in field file",
			Fields: map[string]string{"file": "is required"}})
		return
	}
	defer file.Close()
	users, rejected, err := seed.ParseUsers(file)
	if err != nil {
		writeError(w, &apiError{Status: http.StatusUnprocessableEntity, Msg: err.Error(), Fields: map[string]string{"file": err.Error()}})
		return
	}
	if err := s.Store.ImportUsers(r.Context(), users); err != nil {
		s.fail(w, r, err)
		return
	}
	resp := map[string]any{"count": len(users)}
	if len(rejected) > 0 {
		resp["rejected"] = len(rejected)
		resp["errors"] = rejected[:min(len(rejected), 20)]
	}
	writeJSON(w, http.StatusCreated, resp)
}

// URLs

type urlJSON struct {
	ID          int64   `json:"id"`
	UserID      int64   `json:"user_id"`
	ShortCode   string  `json:"short_code"`
	OriginalURL string  `json:"original_url"`
	Title       *string `json:"title"`
	IsActive    bool    `json:"is_active"`
	CreatedAt   string  `json:"created_at"`
	UpdatedAt   string  `json:"updated_at"`
}

func urlOut(u store.URL) urlJSON {
	return urlJSON{u.ID, u.UserID, u.ShortCode, u.OriginalURL, u.Title, u.IsActive, ts(u.CreatedAt), ts(u.UpdatedAt)}
}

func (s *Server) createURL(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	userID := obj.id(f, "user_id", true)
	original := obj.str(f, "original_url", true, validate.URL)
	title := obj.str(f, "title", false, validate.Title)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.CreateURL(r.Context(), *userID, *original, title)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, &apiError{Status: http.StatusNotFound, Msg: "user not found", Fields: map[string]string{"user_id": "no user has this id"}})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), u.ShortCode) // drop a cached "no such code" from a probe
	writeJSON(w, http.StatusCreated, urlOut(u))
}

func (s *Server) getURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.GetURL(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "url not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, urlOut(u))
}

func (s *Server) listURLs(w http.ResponseWriter, r *http.Request) {
	f := fields{}
	filter := store.URLFilter{UserID: queryID(r, f, "user_id")}
	if v := r.URL.Query().Get("is_active"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f["is_active"] = "must be true or false"
		}
		filter.Active = &b
	}
	p := s.page(r, f)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	us, err := s.Store.ListURLs(r.Context(), filter, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]urlJSON, len(us))
	for i, u := range us {
		out[i] = urlOut(u)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	p := store.URLPatch{
		Title:       obj.str(f, "title", false, validate.Title),
		IsActive:    obj.boolean(f, "is_active"),
		OriginalURL: obj.str(f, "original_url", false, validate.URL),
	}
	for k := range obj {
		if k != "title" && k != "is_active" && k != "original_url" {
			f[k] = "cannot be changed (title, is_active, original_url can)"
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	u, err := s.Store.UpdateURL(r.Context(), id, p)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "url not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), u.ShortCode)
	writeJSON(w, http.StatusOK, urlOut(u))
}

func (s *Server) deleteURL(w http.ResponseWriter, r *http.Request) {
	id, ae := pathID(r, "id")
	if ae != nil {
		writeError(w, ae)
		return
	}
	u, err := s.Store.DeleteURL(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, errStatus(http.StatusNotFound, "url not found"))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.invalidate(r.Context(), u.ShortCode)
	writeJSON(w, http.StatusOK, map[string]any{"deleted": true, "id": id})
}

// invalidate drops codes from the cache after a committed change. If the
// cache cannot be told, its short local and server TTLs bound the staleness.
func (s *Server) invalidate(ctx context.Context, codes ...string) {
	if err := s.Cache.Invalidate(ctx, codes...); err != nil {
		s.Log.WarnContext(ctx, "cache invalidation failed; entries expire on their TTL", "error", err.Error())
	}
}

// redirect is the hot path: cache, then database; the click event is
// buffered, never written on the way.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if !validCode(code) {
		writeError(w, errStatus(http.StatusNotFound, "short code not found"))
		return
	}
	ctx := r.Context()
	e, hit, _ := s.Cache.Get(ctx, code)
	if !hit {
		t, err := s.Store.Resolve(ctx, code)
		switch {
		case errors.Is(err, store.ErrNotFound):
			e = cache.Entry{Missing: true}
		case err != nil:
			s.fail(w, r, err)
			return
		default:
			e = cache.Entry{URLID: t.URLID, UserID: t.UserID, URL: t.OriginalURL, Active: t.Active}
		}
		s.Cache.Set(ctx, code, e)
	}
	if e.Missing || !e.Active {
		writeError(w, errStatus(http.StatusNotFound, "short code not found"))
		return
	}
	if r.Method == http.MethodGet {
		details := clickDetails(code, clip(r.UserAgent(), 256), clip(r.Referer(), 512))
		urlID, userID := e.URLID, e.UserID
		err := s.Events.AddWithin(ctx, store.Event{URLID: &urlID, UserID: &userID, EventType: "click", Timestamp: time.Now().UTC(), Details: details}, s.EnqueueWait)
		if err != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, errStatus(http.StatusServiceUnavailable, "cannot record the click right now (%v); retry", err))
			return
		}
		s.Metrics.Redirects.Inc()
	}
	found(w, r, e.URL)
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func validCode(c string) bool {
	if len(c) < 1 || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// Events

type eventJSON struct {
	ID        int64           `json:"id"`
	URLID     *int64          `json:"url_id"`
	UserID    *int64          `json:"user_id"`
	EventType string          `json:"event_type"`
	Timestamp string          `json:"timestamp"`
	Details   json.RawMessage `json:"details"`
}

func eventOut(e store.Event) eventJSON {
	d := e.Details
	if len(d) == 0 || d[0] != '{' {
		d = json.RawMessage("{}") // always an object, whatever was stored
	}
	return eventJSON{e.ID, e.URLID, e.UserID, e.EventType, ts(e.Timestamp), d}
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	f := fields{}
	filter := store.EventFilter{URLID: queryID(r, f, "url_id"), UserID: queryID(r, f, "user_id")}
	if t := r.URL.Query().Get("event_type"); t != "" {
		filter.EventType = &t
	}
	p := s.page(r, f)
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	// Read-your-writes: clicks buffered on this replica are written first.
	if err := s.Events.Flush(r.Context()); err != nil && !errors.Is(err, events.ErrClosed) {
		s.fail(w, r, fmt.Errorf("flush events: %w", err))
		return
	}
	evs, err := s.Store.ListEvents(r.Context(), filter, p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]eventJSON, len(evs))
	for i, e := range evs {
		out[i] = eventOut(e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createEvent(w http.ResponseWriter, r *http.Request) {
	obj, ae := decodeObject(r)
	if ae != nil {
		writeError(w, ae)
		return
	}
	f := fields{}
	urlID := obj.id(f, "url_id", true)
	userID := obj.id(f, "user_id", true)
	typ := obj.str(f, "event_type", true, validate.EventType)
	details := json.RawMessage("{}")
	if raw, ok := obj["details"]; ok && !isNull(raw) {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			f["details"] = "must be a JSON object"
		} else if p := validate.Details(m); p != "" {
			f["details"] = p
		} else {
			details, _ = json.Marshal(m)
		}
	}
	if len(f) > 0 {
		writeError(w, invalid(f))
		return
	}
	for _, ref := range []struct {
		table, field string
		id           int64
	}{{"urls", "url_id", *urlID}, {"users", "user_id", *userID}} {
		ok, err := s.Store.Exists(r.Context(), ref.table, ref.id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !ok {
			writeError(w, &apiError{Status: http.StatusNotFound, Msg: strings.TrimSuffix(ref.table, "s") + " not found",
				Fields: map[string]string{ref.field: "does not exist"}})
			return
		}
	}
	e, err := s.Store.CreateEvent(r.Context(), store.Event{URLID: urlID, UserID: userID, EventType: *typ, Details: details})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, eventOut(e))
}
