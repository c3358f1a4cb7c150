// Command shortener is the URL shortener liftoff ships: `shortener` serves
// the API, `shortener seed --dir DIR` loads the CSV seed data, `shortener
// migrate` applies migrations and exits, `shortener printenv NAME...` prints
// variables of its environment. Configuration comes from the
// environment: DATABASE_URL (required), CACHE_URL, LISTEN_ADDR (:8080),
// OTEL_EXPORTER_OTLP_ENDPOINT, LOG_LEVEL, ACCESS_LOG_SAMPLE (one in N fast,
// successful requests is logged; default 100), SLOT, SHUTDOWN_DELAY, and the event
// buffer knobs EVENTS_FLUSH_INTERVAL, EVENTS_BATCH, EVENTS_BUFFER.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liftoff-dev/liftoff/app/events"
	"github.com/liftoff-dev/liftoff/app/migrate"
	"github.com/liftoff-dev/liftoff/app/seed"
	"github.com/liftoff-dev/liftoff/app/service"
	"github.com/liftoff-dev/liftoff/app/store"
	"github.com/liftoff-dev/liftoff/app/telemetry"
)

// version is set by the image build: -X main.version=...
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) int {
	log := telemetry.Logger(stdout, getenv("LOG_LEVEL"))
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(ctx, getenv, log)
	case "seed":
		err = seedCmd(ctx, args, getenv, log)
	case "migrate":
		err = migrateCmd(ctx, args, getenv, log, stdout)
	case "version":
		fmt.Fprintln(stdout, version)
	case "printenv":
		// For one-off checks (liftoff exec -- shortener printenv NAME): the
		// image has no shell.
		// Like printenv(1), it exits 1 when a variable is unset (or empty).
		for _, name := range args {
			v := getenv(name)
			if v == "" {
				return 1
			}
			fmt.Fprintln(stdout, v)
		}
	default:
		err = fmt.Errorf("unknown command %q: use serve, seed --dir DIR, migrate, printenv NAME... or version", cmd)
	}
	if err != nil {
		log.Error("exiting", "error", err.Error())
		return 1
	}
	return 0
}

func databaseURL(getenv func(string) string) (string, error) {
	u := getenv("DATABASE_URL")
	if u == "" {
		return "", errors.New("DATABASE_URL is required (postgres://user:password@host:5432/db)")
	}
	return u, nil
}

func openStore(ctx context.Context, getenv func(string) string) (*store.Store, error) {
	u, err := databaseURL(getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return store.Open(ctx, u, store.Options{MinConns: 1, MaxConns: 4})
}

// eventOptions reads the event buffer's tuning knobs.
func eventOptions(getenv func(string) string) (events.Options, error) {
	var o events.Options
	if v := getenv("EVENTS_FLUSH_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("EVENTS_FLUSH_INTERVAL=%q: want a duration like 50ms", v)
		}
		o.MaxDelay = d
	}
	for _, k := range []struct {
		name string
		dst  *int
	}{{"EVENTS_BATCH", &o.MaxBatch}, {"EVENTS_BUFFER", &o.Capacity}} {
		if v := getenv(k.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return o, fmt.Errorf("%s=%q: want a positive number", k.name, v)
			}
			*k.dst = n
		}
	}
	return o, nil
}

func serve(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	dbURL, err := databaseURL(getenv)
	if err != nil {
		return err
	}
	evOpts, err := eventOptions(getenv)
	if err != nil {
		return err
	}
	st, err := readSettings(getenv)
	if err != nil {
		return err
	}
	tracer, stopTracing, err := telemetry.Tracing(ctx, getenv, version)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer stopTracing(context.Background())

	svc, err := service.Start(ctx, service.Config{DatabaseURL: dbURL, CacheURL: getenv("CACHE_URL"), Version: version,
		Slot: getenv("SLOT"), Log: log, Tracer: tracer, Events: evOpts, AccessLogSample: st.sample, SkipMigrations: !st.migrateOnStart,
		StatementTimeout: st.statementTimeout})
	if err != nil {
		return err
	}
	a := svc.API
	a.DurableClicks, a.AccessLogRate, a.RequestTimeout, a.TrustedProxies = st.durableClicks, st.logRate, st.requestTimeout, st.trusted
	a.WriteLimit, a.RedirectLimit = limiter(st.writeRate), limiter(st.redirRate)
	if a.Faults = st.faults; a.Faults != nil {
		log.Warn("FAULT_INJECT is set: this release misbehaves on purpose (a drill)", "faults", a.Faults.String())
	}
	// The listener opens only now: the pool is warm and the schema current.
	ln, err := net.Listen("tcp", st.listen)
	if err != nil {
		svc.Shutdown(nil, 0, st.flush)
		return fmt.Errorf("listen on %s: %w", st.listen, err)
	}
	// Metrics on a listener of their own: Prometheus scrapes the pod's
	// metrics port, which the Service (and the public entry point) never expose.
	if st.metrics != "off" {
		ml, err := net.Listen("tcp", st.metrics)
		if err != nil {
			svc.Shutdown(nil, 0, st.flush)
			return fmt.Errorf("METRICS_ADDR %s: %w", st.metrics, err)
		}
		ms := &http.Server{Handler: a.MetricsHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		go ms.Serve(ml)
		defer ms.Close()
	}
	if st.pprof != "" { // off by default: profiling on a separate, loopback-only listener
		pl, err := net.Listen("tcp", st.pprof)
		if err != nil {
			svc.Shutdown(nil, 0, st.flush)
			return fmt.Errorf("PPROF_ADDR %s: %w", st.pprof, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.Serve(pl, mux)
		log.Info("pprof listening", "addr", pl.Addr().String())
	}
	hs := httpServer(svc.Handler(), st)
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "metrics", st.metrics, "version", version)

	select {
	case err := <-serveErr:
		svc.Shutdown(nil, 0, st.flush)
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests, then flushing clicks", "delay", st.delay.String(), "drain", st.drain.String(), "flush", st.flush.String())
	svc.API.Drain()
	time.Sleep(st.delay) // let load balancers see /ready fail
	return svc.Shutdown(hs, st.drain, st.flush)
}

// httpServer is the public server: a slow client holds a goroutine for
// at most these: the headers in HEADER_TIMEOUT (10 s), the body (a bulk
// upload's 32 MiB too) in 60 s, the answer in 70 s; idle keep-alive
// connections close after 120 s.
func httpServer(h http.Handler, st settings) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: st.headerTimeout, ReadTimeout: 60 * time.Second,
		WriteTimeout: 70 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
}

func seedCmd(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory with users.csv, urls.csv and events.csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("seed needs --dir DIR")
	}
	st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := migrate.Apply(ctx, st.Pool); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	rep, err := seed.Load(ctx, st, *dir)
	if err != nil {
		return err
	}
	log.Info("seeded", "users", rep.Users, "urls", rep.URLs, "events", rep.Events, "rejected", len(rep.Rejected))
	for _, r := range rep.Rejected {
		log.Warn("rejected row", "row", r)
	}
	return nil
}

// migrateCmd applies the pending migrations, or with --plan prints them:
// liftoff's migration phase reads the plan (to refuse a destructive
// change before it runs), backs up, then applies. The plan goes out as
// one block, between "-- liftoff:plan" and "-- liftoff:end", each
// migration under "-- liftoff:migration NAME".
func migrateCmd(ctx context.Context, args []string, getenv func(string) string, log *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	plan := fs.Bool("plan", false, "print the pending migrations' SQL instead of applying them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, getenv)
	if err != nil {
		return err
	}
	defer st.Close()
	if *plan {
		pending, err := migrate.Pending(ctx, st.Pool)
		if err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString("-- liftoff:plan\n")
		for _, m := range pending {
			fmt.Fprintf(&b, "-- liftoff:migration %s\n%s\n", m.Name, strings.TrimSpace(m.SQL))
		}
		b.WriteString("-- liftoff:end\n")
		_, err = io.WriteString(stdout, b.String())
		return err
	}
	n, err := migrate.Apply(ctx, st.Pool)
	if err != nil {
		return err
	}
	log.Info("migrated", "applied", n, "schema_version", migrate.Latest())
	return nil
}
