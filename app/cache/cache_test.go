package cache

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

type counts struct {
	mu      sync.Mutex
	lookups map[string]int
	up      bool
}

func (c *counts) CacheLookup(r string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookups[r]++
}

func (c *counts) CacheUp(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.up = up
}

func (c *counts) errors() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookups[Error]
}

func connected(t *testing.T, url string) (*Cache, *counts) {
	t.Helper()
	obs := &counts{lookups: map[string]int{}}
	c, err := New(url, slog.New(slog.NewTextHandler(io.Discard, nil)), obs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for deadline := time.Now().Add(15 * time.Second); !c.Up(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("cache not up within 15s")
		}
	}
	return c, obs
}

// TestCallerCanceled: a request whose client hung up cancels its cache calls.
// That is no failure of Valkey's: it must not send every other request to the
// database for the backoff (it did, and a load test's end then stalled the
// next second of redirects behind PostgreSQL), and an invalidation after a
// committed change must still be made.
func TestCallerCanceled(t *testing.T) {
	rd := testenv.StartRedis(t)
	c, obs := connected(t, rd.URL)
	bg := context.Background()
	c.Set(bg, "kept", Entry{URLID: 1, UserID: 2, URL: "https://old.example/", Active: true})
	if e, hit, err := c.Get(bg, "kept"); err != nil || !hit || e.URL != "https://old.example/" {
		t.Fatalf("Get before: %+v %v %v", e, hit, err)
	}

	gone, cancel := context.WithCancel(bg)
	cancel()
	if _, _, err := c.Get(gone, "other"); err == nil {
		t.Fatal("Get with a canceled context answered")
	}
	c.Set(gone, "other", Entry{Missing: true})
	if !c.Up() || obs.errors() != 0 {
		t.Fatalf("after canceled calls: up %v, error lookups %d; want up and none", c.Up(), obs.errors())
	}

	if err := c.Invalidate(gone, "kept"); err != nil {
		t.Fatalf("Invalidate with a canceled context: %v", err)
	}
	// The entry is gone from Valkey, and the push removed this process's copy.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, hit, err := c.Get(bg, "kept")
		if err != nil {
			t.Fatal(err)
		}
		if !hit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the invalidated entry is still served 5s later")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A real failure still steps the cache aside.
	rd.Stop()
	if _, _, err := c.Get(bg, "never-looked-up"); err == nil {
		t.Fatal("Get with Valkey stopped answered")
	}
	if c.Up() || obs.errors() != 1 {
		t.Fatalf("after Valkey stopped: up %v, error lookups %d; want down and 1", c.Up(), obs.errors())
	}
}
