package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Faults make a release misbehave on purpose, for drills: FAULT_INJECT
// (errors=5%,delay=300ms) shows what a bad release looks like to liftoff's
// bake, which must roll it back on its own. Errors are deterministic (every
// Nth request of a pod answers 500), so a drill's ratio is exact; /health
// and /ready are never faulted, so probes and the pre-flip smoke test pass
// as they would for a release whose bug only real traffic finds.
type Faults struct {
	// ErrorEvery answers 500 to one request in this many (0: none).
	ErrorEvery int64
	// Delay is added to every request.
	Delay time.Duration
	n     atomic.Int64
}

// ParseFaults reads FAULT_INJECT: comma-separated errors=P% (P between 0
// and 100) and delay=DURATION.
func ParseFaults(s string) (*Faults, error) {
	f := &Faults{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "errors":
			p, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if err != nil || !strings.HasSuffix(v, "%") || p <= 0 || p > 100 {
				return nil, fmt.Errorf("errors=%q: want a share of requests like 5%%", v)
			}
			f.ErrorEvery = int64(math.Round(100 / p))
		case "delay":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 || d > time.Minute {
				return nil, fmt.Errorf("delay=%q: want a duration up to 1m, like 300ms", v)
			}
			f.Delay = d
		default:
			return nil, fmt.Errorf("%q: want errors=P%% and/or delay=DURATION, like errors=5%%,delay=300ms", part)
		}
	}
	return f, nil
}

func (f *Faults) String() string {
	var parts []string
	if f.ErrorEvery > 0 {
		parts = append(parts, fmt.Sprintf("500 to 1 request in %d", f.ErrorEvery))
	}
	if f.Delay > 0 {
		parts = append(parts, "+"+f.Delay.String()+" per request")
	}
	return strings.Join(parts, ", ")
}

// around faults the requests mux routes, labelled with their route.
func (f *Faults) around(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, r.Pattern = mux.Handler(r); f.inject(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// inject delays r and reports whether it answered it with a fault.
func (f *Faults) inject(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/health" || r.URL.Path == "/ready" {
		return false
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
		}
	}
	if f.ErrorEvery > 0 && f.n.Add(1)%f.ErrorEvery == 0 {
		writeError(w, errStatus(http.StatusInternalServerError, "injected fault (FAULT_INJECT)"))
		return true
	}
	return false
}
