package events

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-dev/liftoff/app/store"
)

type sink struct {
	mu      sync.Mutex
	batches [][]store.Event
	fail    atomic.Int32 // fail this many writes
	block   chan struct{}
}

func (s *sink) write(ctx context.Context, evs []store.Event) error {
	if s.block != nil {
		<-s.block
	}
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		return errors.New("database down")
	}
	s.mu.Lock()
	s.batches = append(s.batches, append([]store.Event(nil), evs...))
	s.mu.Unlock()
	return nil
}

func (s *sink) count() (events, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		events += len(b)
	}
	return events, len(s.batches)
}

type obs struct{ written, failed, rejected atomic.Int64 }

func (o *obs) EventsWritten(n int, _ time.Duration) { o.written.Add(int64(n)) }
func (o *obs) EventsWriteFailed(error)              { o.failed.Add(1) }
func (o *obs) EventsRejected()                      { o.rejected.Add(1) }

func ev(i int) store.Event {
	return store.Event{EventType: "click", Details: []byte(`{}`), Timestamp: time.Unix(int64(i), 0)}
}

func TestBatching(t *testing.T) {
	s, o := &sink{}, &obs{}
	b := New(s.write, o, Options{MaxBatch: 100, MaxDelay: time.Hour})
	for i := range 250 {
		if err := b.Add(context.Background(), ev(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Two full batches go out on their own; the rest waits for its delay or a flush.
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := s.count(); n < 200 && time.Now().Before(deadline); n, _ = s.count() {
		time.Sleep(5 * time.Millisecond)
	}
	if n, batches := s.count(); n != 200 || batches != 2 || b.Depth() != 50 {
		t.Fatalf("before flush: %d events in %d batches, depth %d", n, batches, b.Depth())
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.count(); n != 250 || b.Depth() != 0 || o.written.Load() != 250 {
		t.Fatalf("after flush: %d written, depth %d", n, b.Depth())
	}
	b.Close(context.Background())
}

func TestMaxDelay(t *testing.T) {
	s := &sink{}
	b := New(s.write, &obs{}, Options{MaxDelay: 20 * time.Millisecond})
	defer b.Close(context.Background())
	b.Add(context.Background(), ev(1))
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := s.count(); n == 0; n, _ = s.count() {
		if time.Now().After(deadline) {
			t.Fatal("a lone event was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBackPressure: with the database stuck, a full buffer makes Add wait and
// then refuse, counted; nothing already accepted is lost once it recovers.
func TestBackPressure(t *testing.T) {
	s, o := &sink{block: make(chan struct{})}, &obs{}
	b := New(s.write, o, Options{Capacity: 10, MaxBatch: 5, MaxDelay: time.Millisecond})
	accepted := 0
	for i := range 30 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := b.Add(ctx, ev(i))
		cancel()
		if err == nil {
			accepted++
		} else if !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
	}
	if accepted >= 30 || o.rejected.Load() == 0 {
		t.Fatalf("no back-pressure: %d accepted, %d rejected", accepted, o.rejected.Load())
	}
	close(s.block)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.count(); n != accepted {
		t.Fatalf("accepted %d, wrote %d", accepted, n)
	}
}

func TestRetryUntilWritten(t *testing.T) {
	s, o := &sink{}, &obs{}
	s.fail.Store(3)
	b := New(s.write, o, Options{MaxDelay: time.Millisecond, Retry: time.Millisecond})
	b.Add(context.Background(), ev(1))
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.count(); n != 1 || o.failed.Load() != 3 {
		t.Fatalf("written %d after %d failures", n, o.failed.Load())
	}
	b.Close(context.Background())
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	s := &sink{}
	b := New(s.write, &obs{}, Options{MaxDelay: time.Hour})
	var wg sync.WaitGroup
	var added atomic.Int64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if b.Add(context.Background(), ev(g*1000+i)) == nil {
					added.Add(1)
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n, _ := s.count(); int64(n) != added.Load() {
		t.Fatalf("added %d, written %d", added.Load(), n)
	}
	if err := b.Add(context.Background(), ev(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
}

// TestConcurrentAddsWrittenOnce: under concurrent Adds that keep the buffer
// full, every accepted event is written exactly once, in batches of at most
// MaxBatch, while the writer swaps the slices Adds append to.
func TestConcurrentAddsWrittenOnce(t *testing.T) {
	s := &sink{}
	slow := func(ctx context.Context, evs []store.Event) error {
		time.Sleep(100 * time.Microsecond)
		return s.write(ctx, evs)
	}
	b := New(slow, &obs{}, Options{Capacity: 64, MaxBatch: 16, MaxDelay: time.Millisecond})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if err := b.Add(context.Background(), ev(g*10000+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, batch := range s.batches {
		if len(batch) == 0 || len(batch) > 16 {
			t.Errorf("a batch of %d", len(batch))
		}
		for _, e := range batch {
			seen[e.Timestamp.Unix()]++
		}
	}
	for g := range 8 {
		for i := range 2000 {
			if n := seen[int64(g*10000+i)]; n != 1 {
				t.Fatalf("event %d written %d times", g*10000+i, n)
			}
		}
	}
	if b.Depth() != 0 {
		t.Errorf("depth %d after close", b.Depth())
	}
}
