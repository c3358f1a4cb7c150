// Package events buffers click events off the redirect's critical path and
// writes them in batches. Nothing acknowledged is dropped: a full buffer makes
// callers wait (back-pressure), Flush gives read-your-writes, and Close
// writes everything before the process exits.
package events

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liftoff-dev/liftoff/app/store"
)

// ErrFull means the buffer stayed full for the caller's whole wait.
var ErrFull = errors.New("event buffer full")

// ErrClosed means the buffer no longer accepts events.
var ErrClosed = errors.New("event buffer closed")

// Observer receives buffer metrics.
type Observer interface {
	EventsWritten(n int, d time.Duration)
	EventsWriteFailed(err error)
	EventsRejected()
}

// Options tune a Buffer.
type Options struct {
	Capacity int           // events held before Add waits; default 10000
	MaxBatch int           // events per write; default 500
	MaxDelay time.Duration // longest an event waits for its batch; default 50ms
	Retry    time.Duration // first wait after a failed write; default 100ms
}

// Buffer is a bounded queue with one writer goroutine.
type Buffer struct {
	write func(context.Context, []store.Event) error
	obs   Observer
	o     Options

	queue   chan store.Event
	flushes chan chan error
	stop    chan struct{}
	done    chan struct{}

	mu      sync.RWMutex // guards closed against concurrent Add
	closed  bool
	pending sync.WaitGroup // Adds in progress
	// unwritten counts events accepted and not yet written. One counter for
	// queue and batch: the writer takes an event off the queue before it joins
	// the batch, and summing the two would miss it in between.
	unwritten atomic.Int64
}

// New starts a buffer that writes with write.
func New(write func(context.Context, []store.Event) error, obs Observer, o Options) *Buffer {
	if o.Capacity <= 0 {
		o.Capacity = 10000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 500
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = 100 * time.Millisecond
	}
	b := &Buffer{write: write, obs: obs, o: o,
		queue: make(chan store.Event, o.Capacity), flushes: make(chan chan error),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Capacity is the number of events the buffer holds.
func (b *Buffer) Capacity() int { return b.o.Capacity }

// Depth is the number of events not yet written.
func (b *Buffer) Depth() int { return int(b.unwritten.Load()) }

// Add enqueues an event, waiting while the buffer is full until ctx ends.
func (b *Buffer) Add(ctx context.Context, e store.Event) error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	b.pending.Add(1)
	b.mu.RUnlock()
	defer b.pending.Done()
	b.unwritten.Add(1)
	select {
	case b.queue <- e:
		return nil
	default:
	}
	select {
	case b.queue <- e:
		return nil
	case <-ctx.Done():
		b.unwritten.Add(-1)
		b.obs.EventsRejected()
		return ErrFull
	}
}

// AddWithin is Add waiting at most wait for room; an event that fits at once
// costs no timer (the hot path of a redirect).
func (b *Buffer) AddWithin(ctx context.Context, e store.Event, wait time.Duration) error {
	b.mu.RLock()
	if !b.closed {
		b.unwritten.Add(1)
		select {
		case b.queue <- e:
			b.mu.RUnlock()
			return nil
		default:
			b.unwritten.Add(-1)
		}
	}
	b.mu.RUnlock()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return b.Add(ctx, e)
}

// Flush returns once every event added before the call is written.
func (b *Buffer) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case b.flushes <- reply:
	case <-b.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events and writes all of them, retrying until ctx ends.
func (b *Buffer) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.pending.Wait() // no Add is mid-send: the queue only shrinks now
	close(b.stop)
	select {
	case <-b.done:
		if n := b.Depth(); n > 0 {
			return errors.New("event buffer closed with unwritten events")
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *Buffer) run() {
	defer close(b.done)
	batch := make([]store.Event, 0, b.o.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	take := func(e store.Event) {
		if len(batch) == 0 {
			timer.Reset(b.o.MaxDelay)
		}
		batch = append(batch, e)
	}
	flush := func(until <-chan struct{}) error {
		for len(batch) > 0 {
			n := min(len(batch), b.o.MaxBatch)
			if err := b.writeRetrying(batch[:n], until); err != nil {
				return err
			}
			batch = append(batch[:0], batch[n:]...)
			b.unwritten.Add(int64(-n))
		}
		timer.Stop()
		return nil
	}
	drain := func() {
		for {
			select {
			case e := <-b.queue:
				take(e)
			default:
				return
			}
		}
	}
	for {
		select {
		case e := <-b.queue:
			take(e)
			if len(batch) >= b.o.MaxBatch {
				flush(nil)
			}
		case <-timer.C:
			flush(nil)
		case reply := <-b.flushes:
			drain()
			reply <- flush(nil)
		case <-b.stop:
			drain()
			flush(nil)
			return
		}
	}
}

// writeRetrying writes one batch, backing off on failure until it succeeds.
// While it retries, the queue fills and Add applies back-pressure.
func (b *Buffer) writeRetrying(batch []store.Event, until <-chan struct{}) error {
	wait := b.o.Retry
	for {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.write(ctx, batch)
		cancel()
		if err == nil {
			b.obs.EventsWritten(len(batch), time.Since(start))
			return nil
		}
		b.obs.EventsWriteFailed(err)
		select {
		case <-until:
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}
