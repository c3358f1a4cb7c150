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

// Buffer is a bounded queue with one writer goroutine. Events wait in a
// slice under a mutex, not a channel: a channel send wakes a parked writer
// for every event (tens of thousands of wake-ups a second at the redirect
// rate), where the writer here is woken twice a batch, by its first event
// (to start the MaxDelay timer) and by the one that fills it.
type Buffer struct {
	write func(context.Context, []store.Event) error
	obs   Observer
	o     Options

	mu      sync.Mutex
	pending []store.Event // accepted, not yet taken by the writer
	closed  bool
	// room is closed and replaced whenever events stop being held (written,
	// or the buffer closed): an Add waiting for room waits on it.
	room chan struct{}
	// unwritten counts events accepted and not yet written, pending or in
	// the writer's hands; it changes under mu. Add waits while it is at
	// Capacity.
	unwritten atomic.Int64

	kick    chan struct{} // capacity 1: wakes the writer
	flushes chan chan error
	stop    chan struct{}
	done    chan struct{}
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
	b := &Buffer{write: write, obs: obs, o: o, room: make(chan struct{}),
		kick: make(chan struct{}, 1), flushes: make(chan chan error),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

// Capacity is the number of events the buffer holds.
func (b *Buffer) Capacity() int { return b.o.Capacity }

// Depth is the number of events not yet written.
func (b *Buffer) Depth() int { return int(b.unwritten.Load()) }

// tryAdd accepts e if there is room; otherwise it returns the channel that
// says when to try again.
func (b *Buffer) tryAdd(e store.Event) (<-chan struct{}, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if b.unwritten.Load() >= int64(b.o.Capacity) {
		room := b.room
		b.mu.Unlock()
		return room, nil
	}
	b.pending = append(b.pending, e)
	n := len(b.pending)
	b.unwritten.Add(1)
	b.mu.Unlock()
	if n == 1 || n == b.o.MaxBatch {
		select {
		case b.kick <- struct{}{}:
		default: // a wake-up is already due
		}
	}
	return nil, nil
}

// Add enqueues an event, waiting while the buffer is full until ctx ends.
func (b *Buffer) Add(ctx context.Context, e store.Event) error {
	for {
		room, err := b.tryAdd(e)
		if room == nil {
			return err
		}
		select {
		case <-room:
		case <-ctx.Done():
			b.obs.EventsRejected()
			return ErrFull
		}
	}
}

// AddWithin is Add waiting at most wait for room; an event that fits at once
// costs no timer (the hot path of a redirect).
func (b *Buffer) AddWithin(ctx context.Context, e store.Event, wait time.Duration) error {
	if room, err := b.tryAdd(e); room == nil {
		return err
	}
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
	b.roomMade() // Adds waiting for room see the close
	b.mu.Unlock()
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

// roomMade wakes the Adds waiting for room; the caller holds mu.
func (b *Buffer) roomMade() {
	close(b.room)
	b.room = make(chan struct{})
}

func (b *Buffer) run() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	timing := false
	var spare []store.Event
	// writeAll takes what is pending (with full, only whole batches of
	// MaxBatch) and writes it in batches of MaxBatch, again while the writes
	// took long enough for more to fill. Two slices take turns: the one
	// being written, and the one Adds append to meanwhile.
	writeAll := func(full bool) error {
		for {
			b.mu.Lock()
			n := len(b.pending)
			if full {
				n -= n % b.o.MaxBatch
			}
			if n == 0 {
				b.mu.Unlock()
				break
			}
			taken := b.pending
			b.pending = append(spare[:0], taken[n:]...)
			b.mu.Unlock()
			for i := 0; i < n; i += b.o.MaxBatch {
				k := min(b.o.MaxBatch, n-i)
				if err := b.writeRetrying(taken[i:i+k], nil); err != nil {
					return err
				}
				b.mu.Lock()
				b.unwritten.Add(int64(-k))
				b.roomMade()
				b.mu.Unlock()
			}
			clear(taken) // the written events' details can go
			spare = taken[:0]
		}
		b.mu.Lock()
		left := len(b.pending)
		b.mu.Unlock()
		switch {
		case left == 0 && timing:
			timer.Stop()
			timing = false
		case left > 0 && !timing:
			timer.Reset(b.o.MaxDelay)
			timing = true
		}
		return nil
	}
	for {
		select {
		case <-b.kick:
			writeAll(true)
		case <-timer.C:
			timing = false
			writeAll(false)
		case reply := <-b.flushes:
			reply <- writeAll(false)
		case <-b.stop:
			writeAll(false)
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
