package rollout

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Bake defaults: the shipped alerts' thresholds (HighErrorRate, HighLatencyP99).
const (
	DefaultBakeWindow    = time.Minute
	DefaultMaxErrorRatio = 0.005
	DefaultMaxP99        = 250 * time.Millisecond
	DefaultMinRequests   = 100
)

// MetricsPort is where the app's pods serve /metrics (the chart's metrics port).
const MetricsPort = 9091

// BakeOptions say how a release is judged by its real traffic once it has
// it: for Window after the flip (and at each step of a gradual shift),
// liftoff reads the new slot's own request metrics from its pods and rolls
// back at once when the share of 5xx answers exceeds MaxErrorRatio or their
// p99 latency exceeds MaxP99, once at least MinRequests were answered.
type BakeOptions struct {
	Window        time.Duration
	MaxErrorRatio float64
	MaxP99        time.Duration
	MinRequests   int64
	// Interval between two reads of the pods' metrics (2s).
	Interval time.Duration
}

func (b BakeOptions) withDefaults() BakeOptions {
	if b.MaxErrorRatio <= 0 {
		b.MaxErrorRatio = DefaultMaxErrorRatio
	}
	if b.MaxP99 <= 0 {
		b.MaxP99 = DefaultMaxP99
	}
	if b.MinRequests <= 0 {
		b.MinRequests = DefaultMinRequests
	}
	if b.Interval <= 0 {
		b.Interval = 2 * time.Second
	}
	return b
}

// BakeFigures are what a slot answered during a bake.
type BakeFigures struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors_5xx"`
	P99      time.Duration `json:"-"`
	P99MS    float64       `json:"p99_ms"`
	Elapsed  time.Duration `json:"-"`
	Pods     int           `json:"pods"`
}

// ErrorRatio is the share of 5xx answers.
func (f BakeFigures) ErrorRatio() float64 {
	if f.Requests == 0 {
		return 0
	}
	return float64(f.Errors) / float64(f.Requests)
}

func (f BakeFigures) String() string {
	return fmt.Sprintf("%d requests, %.2f%% 5xx, p99 %s", f.Requests, 100*f.ErrorRatio(), roundLatency(f.P99))
}

// roundLatency rounds to the millisecond (4ms, 1.234s), or to 10µs below
// one: 420µs rather than a misleading 0s for a fast app.
func roundLatency(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// BakeResult is a bake's verdict: passed, failed (rolled back), not
// judged (too little traffic) or skipped (the metrics could not be read).
type BakeResult struct {
	Verdict string      `json:"verdict"`
	Reason  string      `json:"reason,omitempty"`
	Figures BakeFigures `json:"figures"`
	// Detect is how long the bake took to find the breach; RolledBackIn
	// how long moving traffic back took.
	DetectMS     int64 `json:"detect_ms,omitempty"`
	RolledBackMS int64 `json:"rolled_back_ms,omitempty"`
	// Step is the share of the slot's pods behind the live Service (100:
	// all of them) when the bake ran.
	Step int `json:"step,omitempty"`
}

// Bake verdicts.
const (
	BakePassed    = "passed"
	BakeFailed    = "failed"
	BakeNotJudged = "not judged"
	BakeSkipped   = "skipped"
)

func (r BakeResult) String() string {
	s := r.Verdict
	if r.Reason != "" {
		s += ": " + r.Reason
	}
	return s
}

// breach says why figures fail the bake ("" when they do not, or when
// there are too few requests to judge).
func (b BakeOptions) breach(f BakeFigures) string {
	if f.Requests < b.MinRequests {
		return ""
	}
	if r := f.ErrorRatio(); r > b.MaxErrorRatio {
		return fmt.Sprintf("%.2f%% of %d requests answered 5xx (limit %.2f%%)", 100*r, f.Requests, 100*b.MaxErrorRatio)
	}
	if f.P99 > b.MaxP99 {
		return fmt.Sprintf("p99 latency %s over %d requests (limit %s)", roundLatency(f.P99), f.Requests, b.MaxP99)
	}
	return ""
}

// podCounters are one pod's request counters, summed over its routes
// (health and readiness probes left out: they are not traffic).
type podCounters struct {
	requests, errors float64
	// buckets are cumulative counts by upper bound, in bound order.
	bounds  []float64
	buckets []float64
}

func (c podCounters) minus(base podCounters) podCounters {
	if c.requests < base.requests || len(base.buckets) != len(c.buckets) { // the pod restarted: all of it is new
		base = podCounters{buckets: make([]float64, len(c.buckets))}
	}
	out := podCounters{requests: c.requests - base.requests, errors: c.errors - base.errors, bounds: c.bounds, buckets: make([]float64, len(c.buckets))}
	for i := range c.buckets {
		out.buckets[i] = c.buckets[i] - base.buckets[i]
	}
	return out
}

func probeRoute(route string) bool { return route == "GET /health" || route == "GET /ready" }

// parseCounters reads a pod's /metrics answer.
func parseCounters(r io.Reader) (podCounters, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return podCounters{}, err
	}
	var c podCounters
	label := func(m *dto.Metric, name string) string {
		for _, l := range m.GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
		return ""
	}
	if f := fams["shortener_http_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			if probeRoute(label(m, "route")) {
				continue
			}
			v := m.GetCounter().GetValue()
			c.requests += v
			if strings.HasPrefix(label(m, "code"), "5") {
				c.errors += v
			}
		}
	}
	if f := fams["shortener_http_request_duration_seconds"]; f != nil {
		sum := map[float64]float64{}
		for _, m := range f.GetMetric() {
			if probeRoute(label(m, "route")) {
				continue
			}
			h := m.GetHistogram()
			for _, b := range h.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				}
			}
			sum[math.Inf(1)] += float64(h.GetSampleCount())
		}
		for le := range sum {
			c.bounds = append(c.bounds, le)
		}
		slices.Sort(c.bounds)
		for _, le := range c.bounds {
			c.buckets = append(c.buckets, sum[le])
		}
	}
	return c, nil
}

// quantile is histogram_quantile over cumulative buckets: linear within
// the bucket the rank falls in; in the +Inf bucket, the highest finite bound.
func quantile(q float64, bounds, buckets []float64) float64 {
	if len(buckets) == 0 || buckets[len(buckets)-1] == 0 {
		return 0
	}
	rank := q * buckets[len(buckets)-1]
	for i, n := range buckets {
		if n < rank {
			continue
		}
		if math.IsInf(bounds[i], 1) {
			if i == 0 {
				return 0
			}
			return bounds[i-1]
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bounds[i-1], buckets[i-1]
		}
		if n == below {
			return bounds[i]
		}
		return lo + (bounds[i]-lo)*(rank-below)/(n-below)
	}
	return bounds[len(bounds)-1]
}

// figures sums the pods' counters since their baselines.
func figures(now, base map[string]podCounters) BakeFigures {
	var total podCounters
	for pod, c := range now {
		d := c.minus(base[pod]) // a pod first seen after the start has a zero baseline
		total.requests += d.requests
		total.errors += d.errors
		if total.bounds == nil {
			total.bounds, total.buckets = d.bounds, make([]float64, len(d.buckets))
		}
		if slices.Equal(total.bounds, d.bounds) {
			for i := range d.buckets {
				total.buckets[i] += d.buckets[i]
			}
		}
	}
	p99 := quantile(0.99, total.bounds, total.buckets)
	return BakeFigures{Requests: int64(total.requests), Errors: int64(total.errors), Pods: len(now),
		P99: time.Duration(p99 * float64(time.Second)), P99MS: math.Round(p99*1e4) / 10}
}

// metricsClient reads pods' metrics through the API server's pod proxy,
// as the smoke test reaches the preview Service: it works wherever the API
// server reaches the pods, with or without a monitoring stack.
func (e *Client) metricsClient() (*http.Client, error) {
	tr, err := rest.TransportFor(e.Rest)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}, nil
}

// scrape reads the request counters of a slot's running pods, by pod.
func (e *Client) scrape(ctx context.Context, hc *http.Client, slot string) (map[string]podCounters, error) {
	pods, err := e.Kube.CoreV1().Pods(e.Ref.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(e.selector(slot)).String()})
	if err != nil {
		return nil, err
	}
	out := map[string]podCounters{}
	var lastErr error
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s:%d/proxy/metrics", strings.TrimSuffix(e.Rest.Host, "/"), e.Ref.Namespace, p.Name, MetricsPort)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			lastErr = fmt.Errorf("pod %s: GET /metrics: %s: %s", p.Name, resp.Status, strings.TrimSpace(string(b)))
			continue
		}
		c, err := parseCounters(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = fmt.Errorf("pod %s: /metrics: %w", p.Name, err)
			continue
		}
		out[p.Name] = c
	}
	if len(out) == 0 && lastErr != nil {
		return nil, lastErr
	}
	return out, nil
}

// bake watches slot's real traffic for the window. It returns the verdict;
// a failed verdict comes with a breach (the caller rolls back). It stops
// early, with the figures so far, when ctx ends.
func (e *Client) bake(ctx context.Context, slot string, b BakeOptions, step int) (BakeResult, error) {
	b = b.withDefaults()
	res := BakeResult{Step: step}
	hc, err := e.metricsClient()
	if err != nil {
		return res, err
	}
	base, err := e.scrape(ctx, hc, slot)
	if err != nil {
		res.Verdict, res.Reason = BakeSkipped, fmt.Sprintf("the pods' metrics cannot be read through the API server: %v", err)
		e.Log.Warnf("bake skipped: %s; the release was not judged by its traffic (--bake 0 turns the bake off)", res.Reason)
		return res, nil
	}
	start := e.Now()
	what := fmt.Sprintf("bake of slot %s", slot)
	if step > 0 && step < 100 {
		what = fmt.Sprintf("step %d%%: bake of slot %s", step, slot)
	}
	e.Log.Infof("%s for %s: rolls back on more than %.2f%% 5xx or a p99 above %s (once %d requests are in)", what, b.Window, 100*b.MaxErrorRatio, b.MaxP99, b.MinRequests)
	last := base
	tick := time.NewTicker(b.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			res.Figures = figures(last, base)
			res.Figures.Elapsed = e.Now().Sub(start)
			return res, ctx.Err()
		case <-tick.C:
		}
		if now, err := e.scrape(ctx, hc, slot); err == nil {
			last = now
		} else if ctx.Err() == nil {
			e.Log.Warnf("bake: reading slot %s's metrics: %v (retrying)", slot, err)
		}
		f := figures(last, base)
		f.Elapsed = e.Now().Sub(start)
		res.Figures = f
		e.Log.Waiting(fmt.Sprintf("%s %s/%s: %s", what, f.Elapsed.Round(time.Second), b.Window, f))
		if why := b.breach(f); why != "" {
			res.Verdict, res.Reason, res.DetectMS = BakeFailed, why, f.Elapsed.Milliseconds()
			return res, nil
		}
		if f.Elapsed < b.Window {
			continue
		}
		if f.Requests < b.MinRequests {
			res.Verdict = BakeNotJudged
			res.Reason = fmt.Sprintf("only %d requests in %s; judging needs %d", f.Requests, b.Window.Round(time.Second), b.MinRequests)
			e.Log.Warnf("the bake could not judge slot %s: %s. It stays live; watch it, and liftoff rollback returns to the previous release", slot, res.Reason)
			return res, nil
		}
		res.Verdict, res.Reason = BakePassed, f.String()
		e.Log.Infof("%s passed: %s in %s", what, f, f.Elapsed.Round(time.Second))
		return res, nil
	}
}

// bakeFailed is the error of a release the bake rolled back.
func bakeFailed(slot, back string, r BakeResult) error {
	return failure.Newf(failure.Health,
		fmt.Sprintf("traffic is back on slot %s (the previous release); fix the release and deploy again", back),
		"bake: slot %s %s after %s of real traffic (%s); rolled back in %d ms", slot, r.Reason, time.Duration(r.DetectMS)*time.Millisecond, r.Figures, r.RolledBackMS)
}
