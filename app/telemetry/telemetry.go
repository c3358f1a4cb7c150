// Package telemetry is the shortener's metrics (Prometheus), logs (JSON) and
// traces (OpenTelemetry over OTLP, when an endpoint is configured).
package telemetry

import (
	"context"
	"io"
	"log/slog"

	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/liftoff-dev/liftoff/app/cache"
)

// Metrics are every series the shortener exports. Dashboards and alerts
// (components/observability) use these names; a test checks they exist.
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec
	Duration        *prometheus.HistogramVec
	CacheLookups    *prometheus.CounterVec
	CacheUpGauge    prometheus.Gauge
	EventsWrittenC  prometheus.Counter
	EventsFlushDur  prometheus.Histogram
	EventsFailures  prometheus.Counter
	EventsRejectedC prometheus.Counter
	// ClicksLate counts redirects answered before their click was written
	// (DurableClicks, a database slower than the wait): the click stays
	// queued and is written when the database answers.
	ClicksLate prometheus.Counter
	Redirects  prometheus.Counter

	// InFlight counts requests being served. It is a plain integer read
	// at scrape time: a prometheus.Gauge adds with a compare-and-swap loop
	// on a float, 1.7% of the server's CPU at saturation when two cores
	// raced on it for every request.
	InFlight atomic.Int64

	// lookups are CacheLookups' series by result, bound once (and so
	// exported from the start, at zero).
	lookups map[string]prometheus.Counter
}

// NewMetrics registers the metrics. depth and capacity report the event
// buffer; pool reports the database pool.
func NewMetrics(version, slot string, pool func() *pgxpool.Stat, depth func() int, capacity int) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shortener_http_requests_total",
			Help: "HTTP requests by route, method and status code."}, []string{"route", "method", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shortener_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"route", "method"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shortener_cache_lookups_total",
			Help: "Redirect cache lookups by result: hit, miss or error (cache unavailable)."}, []string{"result"}),
		CacheUpGauge:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "shortener_cache_up", Help: "1 when the Valkey cache is usable, 0 when lookups go to the database."}),
		EventsWrittenC: prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_events_written_total", Help: "Click events written to the database."}),
		EventsFlushDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shortener_events_flush_duration_seconds",
			Help: "Time to write one batch of events.", Buckets: prometheus.ExponentialBuckets(.0005, 2, 14)}),
		EventsFailures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_events_write_failures_total", Help: "Failed batch writes (retried)."}),
		EventsRejectedC: prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_events_rejected_total", Help: "Redirects refused with 503 because the event buffer stayed full."}),
		Redirects:       prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_redirects_total", Help: "Successful redirects."}),
		ClicksLate:      prometheus.NewCounter(prometheus.CounterOpts{Name: "shortener_clicks_late_total", Help: "Redirects answered before their click was written (a slow database); the click stays queued."}),
	}
	m.lookups = map[string]prometheus.Counter{}
	for _, r := range []string{cache.Hit, cache.Miss, cache.Error} {
		m.lookups[r] = m.CacheLookups.WithLabelValues(r)
	}
	reg.MustRegister(m.Requests, m.Duration, m.CacheLookups, m.CacheUpGauge, m.EventsWrittenC, m.EventsFlushDur,
		m.EventsFailures, m.EventsRejectedC, m.Redirects, m.ClicksLate,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shortener_http_requests_in_flight", Help: "Requests being served."},
			func() float64 { return float64(m.InFlight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shortener_events_buffer_depth", Help: "Click events buffered, not yet written."},
			func() float64 { return float64(depth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shortener_events_buffer_capacity", Help: "Click events the buffer holds before redirects wait."},
			func() float64 { return float64(capacity) }),
		newPoolCollector(pool),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shortener_build_info", Help: "Version and blue/green slot of this process.",
		ConstLabels: prometheus.Labels{"version": version, "slot": slot}})
	info.Set(1)
	reg.MustRegister(info)
	return m
}

// CacheLookup implements cache.Observer.
func (m *Metrics) CacheLookup(result string) {
	c, ok := m.lookups[result]
	if !ok {
		c = m.CacheLookups.WithLabelValues(result)
	}
	c.Inc()
}

// CacheUp implements cache.Observer.
func (m *Metrics) CacheUp(up bool) {
	if up {
		m.CacheUpGauge.Set(1)
	} else {
		m.CacheUpGauge.Set(0)
	}
}

// EventsWritten implements events.Observer.
func (m *Metrics) EventsWritten(n int, d time.Duration) {
	m.EventsWrittenC.Add(float64(n))
	m.EventsFlushDur.Observe(d.Seconds())
}

// EventsWriteFailed implements events.Observer.
func (m *Metrics) EventsWriteFailed(error) { m.EventsFailures.Inc() }

// EventsRejected implements events.Observer.
func (m *Metrics) EventsRejected() { m.EventsRejectedC.Inc() }

type poolCollector struct {
	stat                                   func() *pgxpool.Stat
	acquired, idle, total, max, waitedSecs *prometheus.Desc
	empty                                  *prometheus.Desc
}

func newPoolCollector(stat func() *pgxpool.Stat) *poolCollector {
	return &poolCollector{stat: stat,
		acquired:   prometheus.NewDesc("shortener_db_pool_acquired_connections", "Connections in use.", nil, nil),
		idle:       prometheus.NewDesc("shortener_db_pool_idle_connections", "Idle connections.", nil, nil),
		total:      prometheus.NewDesc("shortener_db_pool_total_connections", "Open connections.", nil, nil),
		max:        prometheus.NewDesc("shortener_db_pool_max_connections", "Pool size limit.", nil, nil),
		waitedSecs: prometheus.NewDesc("shortener_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil),
		empty:      prometheus.NewDesc("shortener_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.total, c.max, c.waitedSecs, c.empty} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	if s == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waitedSecs, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(c.empty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
}

// Logger returns a JSON logger at the level named by LOG_LEVEL (default info).
// Records carry the trace id of the active span, for log-to-trace links.
func Logger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})})
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}
func (h traceHandler) WithGroup(n string) slog.Handler { return traceHandler{h.Handler.WithGroup(n)} }

// Tracing sets up OTLP trace export when OTEL_EXPORTER_OTLP_ENDPOINT (or the
// traces-specific variable) is set, over OTEL_EXPORTER_OTLP_PROTOCOL
// (http/protobuf by default, or grpc). It returns the tracer and a shutdown
// that flushes spans.
func Tracing(ctx context.Context, getenv func(string) string, version string) (trace.Tracer, func(context.Context) error, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return noop.NewTracerProvider().Tracer("shortener"), func(context.Context) error { return nil }, nil
	}
	var exp sdktrace.SpanExporter
	var err error
	if p := getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p == "grpc" {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	res, _ := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", "shortener"), attribute.String("service.version", version)))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Tracer("shortener"), tp.Shutdown, nil
}

// QueryTracer makes a span of every database query.
type QueryTracer struct{ Tracer trace.Tracer }

type spanKey struct{}

// TraceQueryStart implements pgx.QueryTracer.
func (q QueryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx // no request span: keep background work (batch writes) out of traces
	}
	ctx, span := q.Tracer.Start(ctx, "db.query", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql"), attribute.String("db.statement", firstLine(d.SQL))))
	return context.WithValue(ctx, spanKey{}, span)
}

// TraceQueryEnd implements pgx.QueryTracer.
func (q QueryTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	if d.Err != nil {
		span.RecordError(d.Err)
		span.SetStatus(codes.Error, d.Err.Error())
	}
	span.End()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
