// Package cache is the redirect cache in Valkey (or Redis): code -> target,
// with server-assisted client-side caching, so a hit is served from memory
// and a change on any replica invalidates every replica's copy. When Valkey
// is down the cache steps aside and every lookup goes to the database.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Entry is a cached lookup: a target, or a known absence (Missing).
type Entry struct {
	URLID   int64
	UserID  int64
	URL     string
	Active  bool
	Missing bool
}

// Result of a lookup, for metrics.
const (
	Hit   = "hit"
	Miss  = "miss"
	Error = "error"
)

// Observer receives cache metrics.
type Observer interface {
	CacheLookup(result string)
	CacheUp(up bool)
}

// ErrDown means the cache is unavailable and was not asked.
var ErrDown = errors.New("cache unavailable")

// Cache is a code -> Entry cache. Every method is safe with a nil or down cache.
type Cache struct {
	opt  valkey.ClientOption
	log  *slog.Logger
	obs  Observer
	mu   sync.RWMutex
	cli  valkey.Client
	down atomic.Int64 // unix nanos until which the cache is skipped after a failure

	// TTL is the server-side lifetime of an entry; NegativeTTL of a known absence.
	TTL         time.Duration
	NegativeTTL time.Duration
	// LocalTTL caps how long a replica serves an entry from memory.
	LocalTTL time.Duration
	// Backoff is how long lookups skip the cache after a failure of
	// Valkey's (a call its caller canceled is none).
	Backoff time.Duration
	// Timeout bounds each cache call, so a hung Valkey cannot stall redirects.
	Timeout time.Duration

	// MaxMemory caps the decoded entries held in memory (see memo).
	MaxMemory int

	memo memo

	stop chan struct{}
	wg   sync.WaitGroup
}

// memo holds decoded entries in front of the client-side cache, so a hit
// costs a map lookup: no command, no context with a timeout, no decoding.
// It follows the client-side cache: every invalidation Valkey pushes (and
// the flush of everything when the connection drops) removes entries here
// too, and an entry lives no longer than the client-side copy it came from.
type memo struct {
	m sync.Map // code -> memoEntry
	n atomic.Int64
	// gen is bumped by every invalidation: a lookup that raced one drops
	// what it stored (see Get).
	gen atomic.Uint64
}

type memoEntry struct {
	e       Entry
	expires int64 // unix nanos
}

func (m *memo) get(code string, now int64) (Entry, bool) {
	v, ok := m.m.Load(code)
	if !ok {
		return Entry{}, false
	}
	me := v.(memoEntry)
	if now >= me.expires {
		if m.m.CompareAndDelete(code, v) {
			m.n.Add(-1)
		}
		return Entry{}, false
	}
	return me.e, true
}

// put stores an entry unless an invalidation came since gen was read.
func (m *memo) put(code string, me memoEntry, gen uint64, limit int) {
	if m.n.Load() >= int64(limit) {
		m.clear()
	}
	if _, loaded := m.m.Swap(code, me); !loaded {
		m.n.Add(1)
	}
	if m.gen.Load() != gen { // an invalidation ran meanwhile: it may have missed this entry
		m.drop(code)
	}
}

func (m *memo) drop(code string) {
	if _, ok := m.m.LoadAndDelete(code); ok {
		m.n.Add(-1)
	}
}

func (m *memo) clear() {
	m.m.Range(func(k, _ any) bool {
		m.drop(k.(string))
		return true
	})
}

// invalidated is the client's OnInvalidations hook: keys, or nil for all.
func (m *memo) invalidated(msgs []valkey.ValkeyMessage) {
	m.gen.Add(1)
	if msgs == nil {
		m.clear()
		return
	}
	for _, msg := range msgs {
		if key, err := msg.ToString(); err == nil {
			if code, ok := strings.CutPrefix(key, prefix); ok {
				m.drop(code)
			}
		}
	}
}

const prefix = "shortener:code:"

// New returns a cache for a redis:// or rediss:// URL and connects in the
// background: a cache that is down at start comes up when Valkey does.
func New(url string, log *slog.Logger, obs Observer) (*Cache, error) {
	opt, err := valkey.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse CACHE_URL: %w", err)
	}
	opt.Dialer.Timeout = 500 * time.Millisecond
	opt.ConnWriteTimeout = time.Second
	opt.CacheSizeEachConn = 32 << 20
	c := &Cache{opt: opt, log: log, obs: obs, TTL: time.Hour, NegativeTTL: 30 * time.Second,
		LocalTTL: time.Minute, Backoff: time.Second, Timeout: 200 * time.Millisecond, MaxMemory: 100000, stop: make(chan struct{})}
	c.opt.OnInvalidations = c.memo.invalidated
	obs.CacheUp(false)
	c.wg.Add(1)
	go c.connect()
	return c, nil
}

// connect retries until a client is established, then watches its health.
func (c *Cache) connect() {
	defer c.wg.Done()
	wait := 100 * time.Millisecond
	for {
		cli, err := valkey.NewClient(c.opt)
		if err == nil {
			c.mu.Lock()
			c.cli = cli
			c.mu.Unlock()
			c.down.Store(0)
			c.obs.CacheUp(true)
			c.log.Info("cache connected", "addr", strings.Join(c.opt.InitAddress, ","))
			return
		}
		c.log.Warn("cache unavailable; serving from the database", "error", err.Error(), "retry_in", wait.String())
		select {
		case <-c.stop:
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (c *Cache) client() valkey.Client {
	if c == nil {
		return nil
	}
	if until := c.down.Load(); until != 0 && time.Now().UnixNano() < until {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cli
}

// Up reports whether the cache is usable right now.
func (c *Cache) Up() bool { return c.client() != nil }

func (c *Cache) failed(err error) {
	if c.down.Swap(time.Now().Add(c.Backoff).UnixNano()) == 0 {
		c.log.Warn("cache call failed; serving from the database", "error", err.Error(), "backoff", c.Backoff.String())
		c.obs.CacheUp(false)
	}
}

func (c *Cache) recovered() {
	if c.down.Swap(0) != 0 {
		c.log.Info("cache recovered")
		c.obs.CacheUp(true)
	}
}

// Get looks a code up. A miss is (Entry{}, false, nil); a failure is reported
// as an error and counted, and the caller goes to the database.
func (c *Cache) Get(ctx context.Context, code string) (Entry, bool, error) {
	cli := c.client()
	if cli == nil {
		if c != nil {
			c.obs.CacheLookup(Error)
		}
		return Entry{}, false, ErrDown
	}
	now := time.Now()
	if e, ok := c.memo.get(code, now.UnixNano()); ok {
		c.obs.CacheLookup(Hit)
		return e, true, nil
	}
	gen := c.memo.gen.Load()
	callCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	res := cli.DoCache(callCtx, cli.B().Get().Key(prefix+code).Cache(), c.LocalTTL)
	s, err := res.ToString()
	switch {
	case valkey.IsValkeyNil(err):
		c.recovered()
		c.obs.CacheLookup(Miss)
		return Entry{}, false, nil
	case err != nil && ctx.Err() != nil:
		// The caller gave up (its client went away): that says nothing of
		// Valkey, and the request is not served anyway.
		return Entry{}, false, err
	case err != nil:
		c.failed(err)
		c.obs.CacheLookup(Error)
		return Entry{}, false, err
	}
	c.recovered()
	e, err := decode(s)
	if err != nil {
		c.obs.CacheLookup(Miss)
		return Entry{}, false, nil
	}
	// Only what the client-side cache tracks (a server without RESP3 sends
	// no invalidations), and no longer than its copy: the local TTL capped
	// by the key's own (a known absence lives 30 s).
	if at := res.CachePXAT(); at > 0 {
		c.memo.put(code, memoEntry{e: e, expires: at * int64(time.Millisecond)}, gen, c.MaxMemory)
	}
	c.obs.CacheLookup(Hit)
	return e, true, nil
}

// Set stores an entry; failures only log, since the database stays the truth.
func (c *Cache) Set(ctx context.Context, code string, e Entry) {
	cli := c.client()
	if cli == nil {
		return
	}
	ttl := c.TTL
	if e.Missing {
		ttl = c.NegativeTTL
	}
	callCtx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if err := cli.Do(callCtx, cli.B().Set().Key(prefix+code).Value(encode(e)).Ex(ttl).Build()).Error(); err != nil && ctx.Err() == nil {
		c.failed(err)
	}
}

// Invalidate drops codes from Valkey and, through tracking, from every
// replica's memory. It must run after the change commits, and it runs even
// when ctx is canceled: a client that hangs up after its change committed
// must not leave the old entry (or a known absence) cached for its TTL.
func (c *Cache) Invalidate(ctx context.Context, codes ...string) error {
	cli := c.client()
	if cli == nil || len(codes) == 0 {
		return nil
	}
	keys := make([]string, len(codes))
	for i, code := range codes {
		keys[i] = prefix + code
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.Timeout)
	defer cancel()
	if err := cli.Do(ctx, cli.B().Del().Key(keys...).Build()).Error(); err != nil {
		c.failed(err)
		return fmt.Errorf("invalidate %d cached codes: %w", len(codes), err)
	}
	return nil
}

// Close stops reconnecting and closes the client.
func (c *Cache) Close() {
	if c == nil {
		return
	}
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	if c.cli != nil {
		c.cli.Close()
	}
	c.mu.Unlock()
}

// encode: "1 <url_id> <user_id> <active 0|1> <url>", or "0" for a known absence.
func encode(e Entry) string {
	if e.Missing {
		return "0"
	}
	active := "0"
	if e.Active {
		active = "1"
	}
	return "1 " + strconv.FormatInt(e.URLID, 10) + " " + strconv.FormatInt(e.UserID, 10) + " " + active + " " + e.URL
}

func decode(s string) (Entry, error) {
	if s == "0" {
		return Entry{Missing: true}, nil
	}
	parts := strings.SplitN(s, " ", 5)
	if len(parts) != 5 || parts[0] != "1" {
		return Entry{}, errors.New("bad cache entry")
	}
	id, err1 := strconv.ParseInt(parts[1], 10, 64)
	uid, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Entry{}, errors.New("bad cache entry")
	}
	return Entry{URLID: id, UserID: uid, Active: parts[3] == "1", URL: parts[4]}, nil
}
