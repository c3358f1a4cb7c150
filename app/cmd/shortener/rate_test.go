package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
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
