package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/prometheus/client_golang/prometheus"
)

// recorder captures the status, and turns the mux's plain-text 404 and 405
// into JSON errors: the contract wants JSON for every error.
type recorder struct {
	http.ResponseWriter
	status    int
	bytes     int
	swallowed bool
}

func (w *recorder) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	h := w.ResponseWriter.Header()
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) && h.Get("Content-Type") == "text/plain; charset=utf-8" {
		w.swallowed = true
		h.Set("Content-Type", "application/json")
		h.Del("X-Content-Type-Options")
		w.ResponseWriter.WriteHeader(code)
		msg := "not found"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed"
			if allow := h.Get("Allow"); allow != "" {
				msg += "; allowed: " + allow
			}
		}
		b, _ := json.Marshal(map[string]string{"error": msg})
		n, _ := w.ResponseWriter.Write(append(b, '\n'))
		w.bytes += n
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallowed {
		return len(b), nil
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// requestIDHeader is X-Request-ID in the canonical form net/http keeps keys
// in: reading and writing the map directly saves canonicalising per request.
const requestIDHeader = "X-Request-Id"

// routeMetrics are one route, method and status's series, looked up once:
// the vectors hash their labels under a lock on every call.
type routeMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type routeKey struct {
	route, method string
	status        int
}

func (s *Server) routeMetrics(k routeKey) routeMetrics {
	if v, ok := s.series.Load(k); ok {
		return v.(routeMetrics)
	}
	m := routeMetrics{
		requests: s.Metrics.Requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: s.Metrics.Duration.WithLabelValues(k.route, k.method),
	}
	s.series.Store(k, m)
	return m
}

// methodLabel keeps the method label to a fixed set: a client can send any
// method string, and each would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

func (s *Server) middleware(next http.Handler) http.Handler {
	prop := otel.GetTextMapPropagator()
	// Without an exporter the tracer is a no-op: skip extracting, starting
	// and attaching a span that nothing records.
	_, noTracing := s.Tracer.(noop.Tracer)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		seq := s.requestSeq.Add(1)
		var rid string
		if v := r.Header[requestIDHeader]; len(v) > 0 && v[0] != "" && len(v[0]) <= 128 {
			rid = v[0]
		} else {
			var b [40]byte
			id := strconv.AppendUint(b[:0], uint64(start.UnixNano()), 16)
			id = append(id, '-')
			rid = string(strconv.AppendUint(id, seq, 16))
		}
		w.Header()[requestIDHeader] = []string{rid}
		ctx := r.Context()
		var span trace.Span
		if !noTracing {
			ctx = prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
			ctx, span = s.Tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
			r = r.WithContext(ctx)
		}
		timeout := s.RequestTimeout
		if r.URL.Path == "/users/bulk" {
			timeout = s.BulkTimeout
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		r = r.WithContext(ctx)
		rec := &recorder{ResponseWriter: w}
		s.Metrics.InFlight.Add(1)
		defer func() {
			if p := recover(); p != nil {
				s.Log.ErrorContext(ctx, "panic serving request", "panic", fmt.Sprint(p), "request_id", rid)
				if rec.status == 0 {
					writeError(rec, errStatus(http.StatusInternalServerError, "internal error"))
				}
			}
			s.Metrics.InFlight.Add(-1)
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			m := s.routeMetrics(routeKey{route, methodLabel(r.Method), status})
			m.requests.Inc()
			m.duration.Observe(d.Seconds())
			if !noTracing {
				span.SetName(route)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.status_code", status), attribute.String("request.id", rid))
				if status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}
			// Every error and slow request, and every request while the app
			// is quiet; above AccessLogRate lines a second, a sample of the
			// rest: a line per request costs more CPU than the redirect
			// itself at 16k req/s.
			if status >= 400 || d >= s.SlowRequest || s.underLogRate(start) || seq%s.AccessLogSample == 0 || s.Log.Enabled(ctx, slog.LevelDebug) {
				s.Log.InfoContext(ctx, "request", "method", r.Method, "route", route, "path", r.URL.Path, "status", status,
					"duration_ms", float64(d.Microseconds())/1000, "bytes", rec.bytes, "request_id", rid)
			}
		}()
		if isWrite(r.Method) && limited(rec, s.WriteLimit, ClientIP(r, s.TrustedProxies)) {
			return
		}
		next.ServeHTTP(rec, r)
	})
}

func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch || method == http.MethodDelete
}

// underLogRate counts a line against this second's AccessLogRate and
// reports whether it is within it.
func (s *Server) underLogRate(now time.Time) bool {
	sec := now.Unix()
	if w := s.logWindow.Load(); w != sec && s.logWindow.CompareAndSwap(w, sec) {
		s.logLines.Store(0)
	}
	return s.logLines.Add(1) <= s.AccessLogRate
}
