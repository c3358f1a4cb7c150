package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rateResult is what a constant-rate run measured.
type rateResult struct {
	Asked, RPS float64
	P50, P99   time.Duration
	Non3xx     int
	Errors     int
	// Two parts of the latency, to tell the machine from the server:
	// PacerLateP99 is how late the generator itself handed requests out
	// (its thread waiting for a core), AnswerP99 the time from writing a
	// request to reading its answer. The rest of a latency is a request
	// waiting for a free connection.
	PacerLateP99, AnswerP99 time.Duration
}

// constantRate sends GET paths[i % len(paths)] to addr at rate requests/s
// for d, open loop, from conns keep-alive connections: request i is due at
// start + i/rate whether or not earlier ones were answered, and its latency
// is counted from when it was due (as wrk2 does), so a stall shows in the
// percentiles instead of slowing the load. It speaks just enough HTTP/1.1
// for a redirect (status line, headers, Content-Length body), which keeps
// the generator's own CPU small on a machine it shares with the server: hey
// used more CPU per request than the shortener.
func constantRate(addr string, paths []string, rate float64, conns int, d time.Duration) (rateResult, error) {
	reqs := make([][]byte, len(paths))
	for i, p := range paths {
		reqs[i] = []byte("GET " + p + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: liftoff-bench\r\n\r\n")
	}
	interval := time.Duration(float64(time.Second) / rate)
	total := int64(d / interval)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		answers   []time.Duration
		late      = make([]time.Duration, 0, total)
		non3xx    int
		errs      int
		wg        sync.WaitGroup
		firstErr  error
	)
	start := time.Now().Add(50 * time.Millisecond)
	due := func(i int64) time.Time { return start.Add(time.Duration(i) * interval) }
	// One pacer hands out requests as they fall due. It sleeps with
	// nanosleep(2) on its own thread: time.Sleep wakes on the runtime's
	// millisecond poll granularity (a 200 µs sleep took 1.07 ms here), which
	// would add up to a millisecond to every latency.
	tokens := make(chan int64, total)
	go func() {
		runtime.LockOSThread()
		defer close(tokens)
		for i := int64(0); i < total; {
			if wait := time.Until(due(i)); wait > 0 {
				ts := syscall.NsecToTimespec(int64(wait))
				syscall.Nanosleep(&ts, nil)
			}
			for now := time.Now(); i < total && !due(i).After(now); i++ {
				late = append(late, now.Sub(due(i)))
				tokens <- i
			}
		}
	}()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat, answer []time.Duration
			bad, failed := 0, 0
			var c net.Conn
			var r *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
				mu.Lock()
				latencies = append(latencies, lat...)
				answers = append(answers, answer...)
				non3xx += bad
				errs += failed
				mu.Unlock()
			}()
			for i := range tokens {
				if c == nil {
					var err error
					if c, err = net.Dial("tcp", addr); err != nil {
						failed++
						mu.Lock()
						firstErr = firstOf(firstErr, err)
						mu.Unlock()
						c = nil
						continue
					}
					r = bufio.NewReaderSize(c, 4096)
				}
				sent := time.Now()
				status, err := roundTrip(c, r, reqs[i%int64(len(reqs))])
				if err != nil {
					failed++
					mu.Lock()
					firstErr = firstOf(firstErr, err)
					mu.Unlock()
					c.Close()
					c = nil
					continue
				}
				answered := time.Now()
				lat = append(lat, answered.Sub(due(i)))
				answer = append(answer, answered.Sub(sent))
				if status < 300 || status > 399 {
					bad++
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := rateResult{Asked: rate, Non3xx: non3xx, Errors: errs}
	if len(latencies) == 0 {
		return res, fmt.Errorf("no request was answered: %v", firstErr)
	}
	res.RPS = float64(len(latencies)) / elapsed.Seconds()
	res.P50, res.P99 = percentile(latencies, 50), percentile(latencies, 99)
	res.PacerLateP99, res.AnswerP99 = percentile(late, 99), percentile(answers, 99)
	return res, nil
}

// percentile sorts d and returns its p-th percentile.
func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[len(d)*p/100]
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// roundTrip writes one request and reads its response, returning the status.
func roundTrip(c net.Conn, r *bufio.Reader, req []byte) (int, error) {
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 302 Found\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length := 0
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 { // the blank line
			break
		}
		if name, value, ok := bytes.Cut(h, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", h)
			}
		} else if bytes.EqualFold(name, []byte("Transfer-Encoding")) {
			return 0, errors.New("chunked responses are not supported")
		}
	}
	if _, err := r.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// TestConstantRate checks the generator on a server whose behaviour is
// known: it answers 302, 404 on one path, and holds every request that
// arrives in a 300 ms window until the window ends. Open loop means the
// stall shows in the latencies counted from each request's due time (a
// closed-loop generator would only send less meanwhile), and every non-3xx
// is counted.
func TestConstantRate(t *testing.T) {
	const rate, d, stall = 1000.0, 2 * time.Second, 300 * time.Millisecond
	var (
		once  sync.Once
		first time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { first = time.Now() })
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		if opens, now := first.Add(500*time.Millisecond), time.Now(); !now.Before(opens) && now.Before(opens.Add(stall)) {
			time.Sleep(opens.Add(stall).Sub(now))
		}
		w.Header().Set("Location", "https://example.com/")
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()
	res, err := constantRate(strings.TrimPrefix(srv.URL, "http://"), []string{"/a", "/b", "/c", "/missing"}, rate, 10, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.0f req/s, p50 %v, p99 %v, pacer late p99 %v, answer p99 %v", res.RPS, res.P50, res.P99, res.PacerLateP99, res.AnswerP99)
	// Every fourth request is for /missing.
	if want := int(rate * d.Seconds() / 4); res.Non3xx != want || res.Errors != 0 {
		t.Errorf("non-3xx %d, errors %d; want %d and 0", res.Non3xx, res.Errors, want)
	}
	// The window holds the 10 connections' requests, and the other
	// requests due in it (300 in all) queue behind them: counted from their
	// due times, their latencies spread over 0-300 ms, so the slowest 1% of
	// the run's 2,000 waited over 200 ms. Only the 10 held ones (0.5%)
	// waited for their answer: a generator that counted from when it sent,
	// as the answer time does, would hide the stall from the p99.
	if res.P99 < 200*time.Millisecond {
		t.Errorf("p99 %v: the 300 ms stall is not in the latencies", res.P99)
	}
	if res.AnswerP99 > res.P99/2 {
		t.Errorf("answer p99 %v against a p99 of %v: the answer time counts the queue", res.AnswerP99, res.P99)
	}
	if res.RPS < rate/2 {
		t.Errorf("%.0f req/s for %.0f asked: the generator fell behind", res.RPS, rate)
	}
}
