package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load is continuous traffic to a running app: workers on keep-alive
// connections request one URL as fast as it answers, and every answer and
// every error is counted. A request fails when it errors (connection refused
// or reset, timeout) or answers a status the load does not expect.
type Load struct {
	url    string
	ok     func(status int) bool
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	total  atomic.Int64
	failed atomic.Int64

	mu      sync.Mutex
	status  map[int]int64
	errs    map[string]int64
	latency []int64 // answers by whole milliseconds taken (the last: that many or more)
}

// latencyBuckets bound what Load's p99 can tell apart: 1 ms steps up to 5 s.
const latencyBuckets = 5001

// LoadStats are a load's counts so far.
type LoadStats struct {
	Total, Failed int64
	Status        map[int]int64
	// Errors are the failures' messages, by message.
	Errors map[string]int64
	// Latency counts the answers by whole milliseconds taken (Quantile).
	Latency []int64
}

// Quantile is the time within which a share q of the answers came (to the
// millisecond; 5s for anything slower), 0 without answers.
func (s LoadStats) Quantile(q float64) time.Duration {
	var n int64
	for _, c := range s.Latency {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for ms, c := range s.Latency {
		if seen += c; seen >= rank {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return time.Duration(len(s.Latency)-1) * time.Millisecond
}

func (s LoadStats) String() string {
	var parts []string
	for code, n := range s.Status {
		parts = append(parts, fmt.Sprintf("%d: %d", code, n))
	}
	sort.Strings(parts)
	for msg, n := range s.Errors {
		parts = append(parts, fmt.Sprintf("%q: %d", msg, n))
	}
	return fmt.Sprintf("%d requests, %d failed (%s), p99 %s", s.Total, s.Failed, strings.Join(parts, ", "), s.Quantile(0.99))
}

// StartLoad starts workers requesting url (redirects are not followed) until
// Stop; ok says which statuses count as answered.
func StartLoad(url string, workers int, ok func(status int) bool) *Load {
	return startLoad(url, workers, ok, &http.Transport{MaxIdleConnsPerHost: workers})
}

// StartFreshLoad is StartLoad with a new connection for every request, as
// many clients that each ask once: kube-proxy balances every request afresh,
// so traffic follows a Service's selector at once.
func StartFreshLoad(url string, workers int, ok func(status int) bool) *Load {
	return startLoad(url, workers, ok, &http.Transport{DisableKeepAlives: true})
}

func startLoad(url string, workers int, ok func(status int) bool, tr *http.Transport) *Load {
	l := &Load{url: url, ok: ok, stop: make(chan struct{}), status: map[int]int64{}, errs: map[string]int64{}, latency: make([]int64, latencyBuckets)}
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(client)
			}
		}()
	}
	return l
}

func (l *Load) one(client *http.Client) {
	start := time.Now()
	resp, err := client.Get(l.url)
	l.total.Add(1)
	if err != nil {
		l.failed.Add(1)
		l.mu.Lock()
		l.errs[err.Error()]++
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // do not spin on a dead address
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := min(int(time.Since(start)/time.Millisecond), latencyBuckets-1)
	if !l.ok(resp.StatusCode) {
		l.failed.Add(1)
	}
	l.mu.Lock()
	l.status[resp.StatusCode]++
	l.latency[took]++
	l.mu.Unlock()
}

// URL is what the load requests.
func (l *Load) URL() string { return l.url }

// Stats reads the counts so far.
func (l *Load) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LoadStats{Total: l.total.Load(), Failed: l.failed.Load(), Status: map[int]int64{}, Errors: map[string]int64{}, Latency: slices.Clone(l.latency)}
	for k, v := range l.status {
		s.Status[k] = v
	}
	for k, v := range l.errs {
		s.Errors[k] = v
	}
	return s
}

// Stop ends the load and returns its counts (again when called again).
func (l *Load) Stop() LoadStats {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.Stats()
}

// Since is what happened between an earlier Stats and now.
func (s LoadStats) Since(earlier LoadStats) LoadStats {
	d := LoadStats{Total: s.Total - earlier.Total, Failed: s.Failed - earlier.Failed, Status: map[int]int64{}, Errors: map[string]int64{}, Latency: slices.Clone(s.Latency)}
	for i := range min(len(d.Latency), len(earlier.Latency)) {
		d.Latency[i] -= earlier.Latency[i]
	}
	for k, v := range s.Status {
		if n := v - earlier.Status[k]; n != 0 {
			d.Status[k] = n
		}
	}
	for k, v := range s.Errors {
		if n := v - earlier.Errors[k]; n != 0 {
			d.Errors[k] = n
		}
	}
	return d
}

// Slot asks a shortener on a new connection which blue-green slot answers
// (GET / reports it): a new connection is balanced afresh by kube-proxy,
// where a kept-alive one stays with the pod it first reached.
func Slot(client *http.Client, base string) (string, error) {
	req, err := http.NewRequest("GET", strings.TrimSuffix(base, "/")+"/", nil)
	if err != nil {
		return "", err
	}
	req.Close = true
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var info struct{ Slot string }
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return "", err
	}
	return info.Slot, nil
}
