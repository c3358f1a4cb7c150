package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limiter holds a token bucket per client: Rate requests a second, Burst
// at once. Buckets of clients that went quiet are dropped, so a flood of
// addresses costs a bounded map.
type Limiter struct {
	Rate  float64
	Burst float64
	Now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the map: past it, idle buckets are swept at once, and
// a client that finds no room is limited like one with an empty bucket.
const maxBuckets = 100_000

// Allow takes a token of client's bucket; when there is none, it says how
// long until there is.
func (l *Limiter) Allow(client netip.Addr) (bool, time.Duration) {
	now := l.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[netip.Addr]*bucket{}
	}
	if now.Sub(l.swept) > time.Minute || len(l.buckets) >= maxBuckets {
		l.sweep(now)
	}
	b, ok := l.buckets[client]
	switch {
	case ok:
		b.tokens = math.Min(l.Burst, b.tokens+now.Sub(b.at).Seconds()*l.Rate)
		b.at = now
	case len(l.buckets) >= maxBuckets:
		return false, time.Second
	default:
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[client] = b
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
}

// sweep drops the buckets that would be full again: their clients have
// been quiet long enough that forgetting them changes nothing.
func (l *Limiter) sweep(now time.Time) {
	full := time.Duration(l.Burst / l.Rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, k)
		}
	}
	l.swept = now
}

// limited answers 429 with Retry-After when client has no token left.
func limited(w http.ResponseWriter, l *Limiter, client netip.Addr) bool {
	if l == nil || l.Rate <= 0 {
		return false
	}
	ok, wait := l.Allow(client)
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(wait, time.Second).Seconds()))))
	writeError(w, errStatus(http.StatusTooManyRequests, "too many requests; retry later"))
	return true
}

// ClientIP is who sent r: the connection's address, or, when that is a
// trusted proxy (the ingress), the last address of X-Forwarded-For that is
// not one: a client can write the header, but not the addresses the
// proxies append after it.
func ClientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	addr = addr.Unmap()
	if !within(addr, trusted) {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // a malformed header: the proxy itself is the client
		}
		hop = hop.Unmap()
		if !within(hop, trusted) {
			return hop
		}
		addr = hop
	}
	return addr
}

func within(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads a comma-separated list of CIDRs (or single addresses).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
