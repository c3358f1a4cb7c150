package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Close stops the live view and heartbeat.
func (p *Printer) Close() {
	p.mu.Lock()
	p.stopTickerLocked()
	p.clearStatusLocked()
	p.mu.Unlock()
}

func (p *Printer) stopTickerLocked() {
	if p.stop == nil {
		return
	}
	close(p.stop)
	p.stop = nil
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
}

func (p *Printer) tick(stop chan struct{}) {
	defer p.wg.Done()
	every := p.opts.Redraw
	if !p.live {
		every = min(time.Second, p.opts.Heartbeat)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.mu.Lock()
			if p.live {
				p.drawLocked()
			} else if p.opts.Now().Sub(p.lastWrite) >= p.opts.Heartbeat {
				p.heartbeatLocked()
			}
			p.mu.Unlock()
		}
	}
}

// slowestLocked names the longest-running resource step, or what the phase waits for.
func (p *Printer) slowestLocked() (string, time.Duration) {
	var name string
	var since time.Time
	for _, f := range p.inflight {
		if name == "" || f.since.Before(since) || (f.since.Equal(since) && f.name < name) {
			name, since = f.name, f.since
		}
	}
	if name == "" {
		return p.waitingFor, 0
	}
	return name, p.opts.Now().Sub(since)
}

func (p *Printer) heartbeatLocked() {
	elapsed := p.opts.Now().Sub(p.phaseStart)
	what, d := p.slowestLocked()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeHeartbeat, Phase: p.phase, DurationMS: elapsed.Milliseconds(), Done: int64(p.done), Total: int64(p.total), Waiting: what})
		return
	}
	p.lineLocked(p.s.Err, "    … %s", p.statusTextLocked(elapsed, what, d))
}

func (p *Printer) statusTextLocked(elapsed time.Duration, what string, d time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", p.phase, roundDuration(elapsed))
	if p.total > 0 {
		fmt.Fprintf(&b, ", %d/%d done", p.done, p.total)
	} else if p.done > 0 {
		fmt.Fprintf(&b, ", %d done", p.done)
	}
	if what != "" {
		fmt.Fprintf(&b, ", waiting on %s", what)
		if d > 0 {
			fmt.Fprintf(&b, " (%s)", roundDuration(d))
		}
	}
	return b.String()
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *Printer) drawLocked() {
	if p.phase == "" {
		return
	}
	elapsed := p.opts.Now().Sub(p.phaseStart)
	what, d := p.slowestLocked()
	frame := spinner[int(elapsed/(100*time.Millisecond))%len(spinner)]
	fmt.Fprintf(p.s.Err, "\r\033[K%s %s", frame, p.statusTextLocked(elapsed, what, d))
	p.statusLen = true
}

func (p *Printer) clearStatusLocked() {
	if p.statusLen {
		fmt.Fprint(p.s.Err, "\r\033[K")
		p.statusLen = false
	}
}

func (p *Printer) lineLocked(w io.Writer, format string, args ...any) {
	p.clearStatusLocked()
	fmt.Fprintf(w, format+"\n", args...)
	p.lastWrite = p.opts.Now()
	if p.live && p.phase != "" {
		p.drawLocked()
	}
}

func (p *Printer) emitLocked(e Event) {
	e.V = SchemaVersion
	if e.Time == "" {
		e.Time = p.opts.Now().UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(e)
	if err != nil {
		// Every field is a plain type; a failure here is a programming error.
		b, _ = json.Marshal(Event{V: SchemaVersion, Time: e.Time, Type: TypeError, Message: "encode event: " + err.Error(), Class: "internal", ExitCode: 1})
	}
	p.s.Out.Write(append(b, '\n'))
	p.lastWrite = p.opts.Now()
}
