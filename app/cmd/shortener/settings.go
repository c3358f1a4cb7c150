package main

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/liftoff-dev/liftoff/app/api"
)

// settings are serve's environment, read and checked before anything starts.
type settings struct {
	listen, metrics, pprof string
	sample                 uint64
	logRate                int64
	migrateOnStart         bool
	durableClicks          bool
	trusted                []netip.Prefix
	writeRate, redirRate   float64
	requestTimeout         time.Duration
	statementTimeout       time.Duration
	// headerTimeout bounds a client's request headers: a client that
	// trickles them (slowloris) is cut off.
	headerTimeout time.Duration
	// The shutdown's budget, each its own: seconds of /ready failing
	// before the drain, the drain of requests, then the flush of clicks.
	delay, drain, flush time.Duration
	// faults, for drills, make the release misbehave (FAULT_INJECT).
	faults *api.Faults
}

// readSettings reads serve's variables; each error names the variable and
// the form it wants.
func readSettings(getenv func(string) string) (settings, error) {
	s := settings{listen: ":8080", metrics: ":9091", migrateOnStart: true, durableClicks: true, writeRate: 10,
		requestTimeout: 10 * time.Second, headerTimeout: 10 * time.Second, statementTimeout: 5 * time.Second, drain: 10 * time.Second, flush: 20 * time.Second}
	var err error
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	str("LISTEN_ADDR", &s.listen)
	str("METRICS_ADDR", &s.metrics)
	str("PPROF_ADDR", &s.pprof)
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" && err == nil {
			if *dst, err = strconv.ParseBool(v); err != nil {
				err = fmt.Errorf("%s=%q: want true or false", name, v)
			}
		}
	}
	boolean("MIGRATE_ON_START", &s.migrateOnStart)
	boolean("DURABLE_CLICKS", &s.durableClicks)
	duration := func(name string, dst *time.Duration) {
		if v := getenv(name); v != "" && err == nil {
			d, perr := time.ParseDuration(v)
			if perr != nil || d < 0 {
				err = fmt.Errorf("%s=%q: want a duration like 5s", name, v)
			}
			*dst = d
		}
	}
	duration("REQUEST_TIMEOUT", &s.requestTimeout)
	duration("HEADER_TIMEOUT", &s.headerTimeout)
	duration("STATEMENT_TIMEOUT", &s.statementTimeout)
	duration("SHUTDOWN_DELAY", &s.delay)
	duration("DRAIN_TIMEOUT", &s.drain)
	duration("FLUSH_TIMEOUT", &s.flush)
	rate := func(name string, dst *float64) {
		if v := getenv(name); v != "" && err == nil {
			r, perr := strconv.ParseFloat(v, 64)
			if perr != nil || r < 0 {
				err = fmt.Errorf("%s=%q: want requests a second per client, like 10 (0 does not limit)", name, v)
			}
			*dst = r
		}
	}
	rate("RATE_LIMIT_WRITES", &s.writeRate)
	rate("RATE_LIMIT_REDIRECTS", &s.redirRate)
	if v := getenv("ACCESS_LOG_SAMPLE"); v != "" && err == nil {
		if s.sample, err = strconv.ParseUint(v, 10, 32); err != nil || s.sample == 0 {
			err = fmt.Errorf("ACCESS_LOG_SAMPLE=%q: want a whole number of 1 or more (1 logs every request)", v)
		}
	}
	if v := getenv("ACCESS_LOG_RATE"); v != "" && err == nil {
		if s.logRate, err = strconv.ParseInt(v, 10, 32); err != nil || s.logRate < 1 {
			err = fmt.Errorf("ACCESS_LOG_RATE=%q: want the lines a second logged in full, like 20", v)
		}
	}
	s.trusted, _ = api.ParsePrefixes(privateRanges)
	switch v := getenv("TRUSTED_PROXIES"); {
	case v == "none":
		s.trusted = nil
	case v != "" && err == nil:
		if s.trusted, err = api.ParsePrefixes(v); err != nil {
			err = fmt.Errorf("TRUSTED_PROXIES=%q: want CIDRs like 10.0.0.0/16,10.1.2.3, or none: %v", v, err)
		}
	}
	if v := getenv("FAULT_INJECT"); v != "" && err == nil {
		if s.faults, err = api.ParseFaults(v); err != nil {
			err = fmt.Errorf("FAULT_INJECT=%q: %v", v, err)
		}
	}
	if err == nil && s.pprof != "" && !loopback(s.pprof) {
		err = fmt.Errorf("PPROF_ADDR=%q: profiling listens on loopback only, like 127.0.0.1:6060", s.pprof)
	}
	return s, err
}

// privateRanges are the proxies trusted by default (as Rails does):
// loopback and the private ranges, where a cluster's ingress lives; a
// client on the internet reaches the app only through that ingress, which
// writes the X-Forwarded-For the app reads.
const privateRanges = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

// loopback reports whether addr (host:port) names a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// limiter is a per-client limiter of rate a second, bursting to twice it.
func limiter(rate float64) *api.Limiter {
	if rate <= 0 {
		return nil
	}
	return &api.Limiter{Rate: rate, Burst: max(2*rate, 1), Now: time.Now}
}
