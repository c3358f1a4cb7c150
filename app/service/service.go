// Package service wires the shortener together: pool (warmed), migrations,
// metrics, event buffer, cache and API; and takes it apart again in the
// order that loses nothing.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/liftoff-dev/liftoff/app/api"
	"github.com/liftoff-dev/liftoff/app/cache"
	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/telemetry"
)

// Config is everything the service reads from its environment.
type Config struct {
	DatabaseURL string
	CacheURL    string
	Version     string
	Slot        string
	Log         *slog.Logger
	Tracer      trace.Tracer
	Events      events.Options
	MinConns    int32
	MaxConns    int32
	// AccessLogSample logs one in N fast, successful requests (see api.Server).
	AccessLogSample uint64
	// StatementTimeout bounds every query (0: none): a stalled database
	// cannot hold the app's connections and goroutines forever.
	StatementTimeout time.Duration
	// SkipMigrations leaves the schema to whoever deploys the app (liftoff
	// runs `shortener migrate` as a deploy phase): the service checks the
	// schema is current (GET /ready) but never changes it.
	SkipMigrations bool
}

// Service is a running shortener, minus its listener.
type Service struct {
	Store   *store.Store
	Cache   *cache.Cache
	Events  *events.Buffer
	Metrics *telemetry.Metrics
	API     *api.Server
	log     *slog.Logger
}

// Start opens and warms the pool, applies migrations and starts the buffer
// and cache. The service is ready to serve when it returns.
func Start(ctx context.Context, c Config) (*Service, error) {
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer("shortener")
	}
	if c.MinConns == 0 {
		c.MinConns = 4
	}
	if c.MaxConns == 0 {
		c.MaxConns = 16
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Open(octx, c.DatabaseURL, store.Options{MinConns: c.MinConns, MaxConns: c.MaxConns, Tracer: telemetry.QueryTracer{Tracer: c.Tracer},
		StatementTimeout: c.StatementTimeout})
	if err != nil {
		return nil, err
	}
	n := 0
	if !c.SkipMigrations {
		if n, err = migrate.Apply(octx, st.Pool); err != nil {
			st.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	c.Log.Info("database ready", "migrations_applied", n, "skip_migrations", c.SkipMigrations, "schema_version", migrate.Latest(), "pool_conns", st.Pool.Stat().TotalConns())

	s := &Service{Store: st, log: c.Log}
	if c.Events.Capacity <= 0 {
		c.Events.Capacity = 10000
	}
	s.Metrics = telemetry.NewMetrics(c.Version, c.Slot, st.Pool.Stat, func() int { return s.Events.Depth() }, c.Events.Capacity)
	s.Events = events.New(st.InsertEvents, s.Metrics, c.Events)
	if c.CacheURL != "" {
		if s.Cache, err = cache.New(c.CacheURL, c.Log, s.Metrics); err != nil {
			s.Events.Close(ctx)
			st.Close()
			return nil, err
		}
	} else {
		c.Log.Info("no CACHE_URL: redirects are served from the database")
	}
	s.API = &api.Server{Store: st, Cache: s.Cache, Events: s.Events, Metrics: s.Metrics, Log: c.Log, Tracer: c.Tracer,
		Version: c.Version, Slot: c.Slot, AccessLogSample: c.AccessLogSample}
	return s, nil
}

// Handler is the HTTP API.
func (s *Service) Handler() http.Handler { return s.API.Handler() }

// Shutdown drains hs (if any) for at most drain, then writes every buffered
// event, retrying for at most flush (a database down at SIGTERM has that
// long to come back), then closes the cache and the pool. Each has its own
// budget: a slow drain does not eat the flush's.
func (s *Service) Shutdown(hs *http.Server, drain, flush time.Duration) error {
	s.API.Drain()
	if hs != nil {
		ctx, cancel := context.WithTimeout(context.Background(), drain)
		if err := hs.Shutdown(ctx); err != nil {
			s.log.Error("draining requests", "error", err.Error())
		}
		cancel()
	}
	depth := s.Events.Depth()
	ctx, cancel := context.WithTimeout(context.Background(), flush)
	defer cancel()
	err := s.Events.Close(ctx)
	s.Cache.Close()
	s.Store.Close()
	if err != nil {
		return fmt.Errorf("flush %d buffered events: %w", depth, err)
	}
	s.log.Info("stopped", "events_flushed", depth)
	return nil
}
