package rollout

import (
	"math"
	"strings"
	"testing"
	"time"
)

const metricsText = `# TYPE shortener_http_requests_total counter
shortener_http_requests_total{code="302",method="GET",route="GET /{code}"} 950
shortener_http_requests_total{code="500",method="GET",route="GET /{code}"} 50
shortener_http_requests_total{code="200",method="GET",route="GET /health"} 400
shortener_http_requests_total{code="503",method="GET",route="GET /ready"} 7
# TYPE shortener_http_request_duration_seconds histogram
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /{code}",le="0.1"} 900
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /{code}",le="0.25"} 980
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /{code}",le="0.5"} 1000
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /{code}",le="+Inf"} 1000
shortener_http_request_duration_seconds_sum{method="GET",route="GET /{code}"} 60
shortener_http_request_duration_seconds_count{method="GET",route="GET /{code}"} 1000
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /health",le="0.1"} 400
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /health",le="0.25"} 400
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /health",le="0.5"} 400
shortener_http_request_duration_seconds_bucket{method="GET",route="GET /health",le="+Inf"} 400
shortener_http_request_duration_seconds_sum{method="GET",route="GET /health"} 1
shortener_http_request_duration_seconds_count{method="GET",route="GET /health"} 400
`

// TestBakeFigures: counters per pod since their baselines, probes left
// out, a restarted pod counted from zero, p99 as histogram_quantile has it.
func TestBakeFigures(t *testing.T) {
	c, err := parseCounters(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if c.requests != 1000 || c.errors != 50 {
		t.Fatalf("requests %v errors %v (probes must not count)", c.requests, c.errors)
	}
	// p99 of 1000: rank 990, in the (0.25, 0.5] bucket holding 980..1000.
	if q := quantile(0.99, c.bounds, c.buckets); math.Abs(q-0.375) > 1e-9 {
		t.Errorf("p99 %v, want 0.375", q)
	}
	half := podCounters{requests: 500, errors: 0, bounds: c.bounds, buckets: []float64{500, 500, 500, 500}}
	restarted := podCounters{requests: 10, errors: 10, bounds: c.bounds, buckets: []float64{10, 10, 10, 10}}
	f := figures(map[string]podCounters{"a": c, "b": restarted, "new": c}, map[string]podCounters{"a": half, "b": c})
	// a: 500 requests, 50 errors since its baseline; b restarted: 10 and 10; new: all 1000 and 50.
	if f.Requests != 1510 || f.Errors != 110 || f.Pods != 3 {
		t.Errorf("figures %+v", f)
	}

	b := BakeOptions{}.withDefaults()
	for _, c := range []struct {
		f    BakeFigures
		want string
	}{
		{BakeFigures{Requests: 99, Errors: 99}, ""}, // too few to judge
		{BakeFigures{Requests: 1000, Errors: 5}, ""},
		{BakeFigures{Requests: 1000, Errors: 6}, "0.60% of 1000 requests answered 5xx"},
		{BakeFigures{Requests: 1000, P99: 300 * time.Millisecond}, "p99 latency 300ms"},
	} {
		if got := b.breach(c.f); (c.want == "") != (got == "") || !strings.HasPrefix(got, c.want) {
			t.Errorf("breach(%+v) = %q, want %q", c.f, got, c.want)
		}
	}
	// A fast app's p99 reads as what it is, not as 0s.
	for p99, want := range map[time.Duration]string{423 * time.Microsecond: "p99 420µs", 4400 * time.Microsecond: "p99 4ms", 1234 * time.Millisecond: "p99 1.234s"} {
		if got := (BakeFigures{Requests: 10, P99: p99}).String(); !strings.HasSuffix(got, want) {
			t.Errorf("figures with p99 %s read %q, want %q", p99, got, want)
		}
	}
}

func TestSteps(t *testing.T) {
	for _, bad := range [][]int{{10, 50}, {50, 10, 100}, {0, 100}, {10, 100, 100}, {110}} {
		if ValidSteps(bad) == nil {
			t.Errorf("steps %v accepted", bad)
		}
	}
	if ValidSteps([]int{10, 50, 100}) != nil || ValidSteps(nil) != nil {
		t.Error("good steps refused")
	}
	for _, c := range []struct {
		pct, live, n, k int
		share           float64
	}{
		{10, 2, 2, 1, 1.0 / 3}, // the smallest share with 2 live pods is 1 in 3
		{50, 2, 2, 2, 0.5},
		{10, 9, 9, 1, 0.1},
		{25, 6, 6, 2, 0.25},
		{90, 2, 2, 2, 0.5}, // at most the slot's own count
	} {
		k, share := StepPods(c.pct, c.live, c.n)
		if k != c.k || math.Abs(share-c.share) > 1e-9 {
			t.Errorf("StepPods(%d, %d, %d) = %d, %.3f; want %d, %.3f", c.pct, c.live, c.n, k, share, c.k, c.share)
		}
	}
}
