package ui

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Options configure a Printer.
type Options struct {
	JSON    bool
	Verbose bool
	// Now is the clock; tests pin it. Defaults to time.Now.
	Now func() time.Time
	// Heartbeat is the longest silence allowed in plain and JSON output before
	// a line saying what liftoff waits for. Defaults to 30s.
	Heartbeat time.Duration
	// Redraw is how often the live view repaints on a terminal. Defaults to 200ms.
	Redraw time.Duration
}

// Printer renders a run's progress. It is safe for concurrent use.
type Printer struct {
	s    *Streams
	opts Options
	live bool // a status line is repainted on stderr

	mu         sync.Mutex
	phase      string
	phaseStart time.Time
	lastWrite  time.Time
	inflight   map[string]inflight
	done       int
	total      int
	waitingFor string
	statusLen  bool
	// progress remembers, per message, the last quarter printed and when.
	progress map[string]progressMark
	stop     chan struct{}
	wg       sync.WaitGroup
}

type progressMark struct {
	quarter int64
	at      time.Time
}

type inflight struct {
	name  string
	since time.Time
}

// NewPrinter returns a printer over s.
func NewPrinter(s *Streams, o Options) *Printer {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 30 * time.Second
	}
	if o.Redraw <= 0 {
		o.Redraw = 200 * time.Millisecond
	}
	return &Printer{s: s, opts: o, live: s.ErrTTY && !s.CI && !o.JSON, inflight: map[string]inflight{}, progress: map[string]progressMark{}}
}

// JSON reports whether the printer writes NDJSON events.
func (p *Printer) JSON() bool { return p.opts.JSON }

// Streams returns the streams the printer writes to.
func (p *Printer) Streams() *Streams { return p.s }

// StartPhase begins a named phase of work and starts the heartbeat.
func (p *Printer) StartPhase(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTickerLocked()
	now := p.opts.Now()
	p.phase, p.phaseStart = name, now
	p.done, p.total, p.waitingFor = 0, 0, ""
	clear(p.inflight)
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypePhaseStart, Phase: name})
	} else if !p.live {
		p.lineLocked(p.s.Err, "==> %s", name)
	}
	p.stop = make(chan struct{})
	p.wg.Add(1)
	go p.tick(p.stop)
}

// EndPhase ends the current phase with its outcome. A nil err is success;
// ErrSkipped marks a phase that had nothing to do.
func (p *Printer) EndPhase(name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopTickerLocked()
	d := p.opts.Now().Sub(p.phaseStart)
	status := "ok"
	switch {
	case err == ErrSkipped:
		status = "skipped"
	case err != nil:
		status = "failed"
	}
	if p.opts.JSON {
		e := Event{Type: TypePhaseEnd, Phase: name, Status: status, DurationMS: d.Milliseconds()}
		if err != nil && err != ErrSkipped {
			e.Message = err.Error()
		}
		p.emitLocked(e)
	} else {
		mark := map[string]string{"ok": "✓", "skipped": "-", "failed": "✗"}[status]
		suffix := ""
		if status == "skipped" {
			suffix = " (nothing to do)"
		}
		p.lineLocked(p.s.Err, "%s %s %s%s", mark, name, roundDuration(d), suffix)
	}
	p.phase = ""
}

// ErrSkipped is passed to EndPhase for a phase that had nothing to do.
var ErrSkipped = skipped{}

type skipped struct{}

func (skipped) Error() string { return "skipped" }

// SetTotal sets how many steps the current phase expects.
func (p *Printer) SetTotal(n int) {
	p.mu.Lock()
	p.total = n
	p.mu.Unlock()
}

// Waiting records what the current phase waits for, for heartbeats and the live view.
func (p *Printer) Waiting(what string) {
	p.mu.Lock()
	p.waitingFor = what
	p.mu.Unlock()
}

// ResourceStarted records a resource step in flight.
func (p *Printer) ResourceStarted(urn, typ, name, op string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight[urn] = inflight{name: typ + " " + name, since: p.opts.Now()}
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeResource, Op: op, URN: urn, ResourceType: typ, Name: name, Status: "started"})
	}
}

// ResourceDone records the end of a resource step. Unchanged resources are
// only shown with --verbose.
func (p *Printer) ResourceDone(urn, typ, name, op string, failed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	if f, ok := p.inflight[urn]; ok {
		d = p.opts.Now().Sub(f.since)
		delete(p.inflight, urn)
	}
	p.done++
	status := "done"
	if failed {
		status = "failed"
	}
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeResource, Op: op, URN: urn, ResourceType: typ, Name: name, Status: status, DurationMS: d.Milliseconds()})
		return
	}
	if op == "same" && !failed && !p.opts.Verbose {
		return
	}
	mark := "  "
	if failed {
		mark = "✗ "
	}
	p.lineLocked(p.s.Err, "  %s%-8s %s %s (%s)", mark, op, typ, name, roundDuration(d))
}

// Diagnostic reports a message from the engine or a tool.
func (p *Printer) Diagnostic(severity, msg string) {
	msg = strings.TrimRight(msg, "\n")
	if msg == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeDiagnostic, Severity: severity, Message: msg})
		return
	}
	if severity == "debug" && !p.opts.Verbose {
		return
	}
	p.lineLocked(p.s.Err, "  %s: %s", severity, msg)
}

// Progress reports measured progress (bytes pushed, pods ready). Updates are
// thinned: plain output prints each quarter, --json at most twice a second;
// completion is always reported.
func (p *Printer) Progress(msg string, done, total int64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.opts.Now()
	last, seen := p.progress[msg]
	quarter := int64(-1)
	if total > 0 {
		quarter = done * 4 / total
	}
	complete := total > 0 && done >= total
	switch {
	case complete && seen && last.quarter == 4:
		return // completion already reported
	case complete:
	case p.opts.JSON && seen && now.Sub(last.at) < 500*time.Millisecond:
		return
	case !p.opts.JSON && !p.live && seen && quarter == last.quarter && (total > 0 || now.Sub(last.at) < 10*time.Second):
		return // a log line per quarter, or every 10 s when the total is unknown
	}
	p.progress[msg] = progressMark{quarter: quarter, at: now}
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeProgress, Phase: p.phase, Message: msg, Done: done, Total: total, Unit: unit})
		return
	}
	p.waitingFor = msg
	if p.live {
		p.lastWrite = p.opts.Now()
		p.drawLocked()
		return
	}
	if total > 0 {
		p.lineLocked(p.s.Err, "    %s: %s/%s", msg, formatAmount(done, unit), formatAmount(total, unit))
	} else {
		p.lineLocked(p.s.Err, "    %s: %s", msg, formatAmount(done, unit))
	}
}

// Infof writes an informational line for people (a log event with --json).
func (p *Printer) Infof(format string, args ...any) {
	p.logf("info", format, args...)
}

// Warnf writes a warning line (a log event with --json).
func (p *Printer) Warnf(format string, args ...any) {
	p.logf("warning", format, args...)
}

// Debugf writes a line only with --verbose.
func (p *Printer) Debugf(format string, args ...any) {
	if p.opts.Verbose {
		p.logf("debug", format, args...)
	}
}

func (p *Printer) logf(severity, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeLog, Severity: severity, Message: msg})
		return
	}
	if severity == "info" {
		p.lineLocked(p.s.Err, "%s", msg)
		return
	}
	p.lineLocked(p.s.Err, "%s: %s", severity, msg)
}
