package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
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
	case !p.opts.JSON && !p.live && seen && quarter == last.quarter:
		return
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
		p.lineLocked(p.s.Err, "    %s", msg)
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

// Summary prints the closing summary of a run: outputs (already masked) and
// structured data such as phase timings.
func (p *Printer) Summary(title string, outputs map[string]any, data map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeSummary, Message: title, Outputs: outputs, Data: data})
		return
	}
	p.clearStatusLocked()
	fmt.Fprintf(p.s.Out, "%s\n", title)
	keys := make([]string, 0, len(outputs))
	width := 0
	for k := range outputs {
		keys = append(keys, k)
		width = max(width, len(k))
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(p.s.Out, "  %-*s  %s\n", width, k, formatValue(outputs[k]))
	}
	if phases, ok := data["phases"].([]PhaseTiming); ok && len(phases) > 0 {
		parts := make([]string, len(phases))
		for i, ph := range phases {
			parts[i] = fmt.Sprintf("%s %s", ph.Name, roundDuration(time.Duration(ph.Millis)*time.Millisecond))
			if ph.Status != "ok" {
				parts[i] += " (" + ph.Status + ")"
			}
		}
		fmt.Fprintf(p.s.Out, "  took: %s\n", strings.Join(parts, ", "))
	}
}

// PhaseTiming is one phase's outcome in a summary.
type PhaseTiming struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, skipped, failed
	Millis int64  `json:"duration_ms"`
}

// AppLog writes one line of the app's own log (liftoff logs): text for
// people, or an app_log event at the line's time carrying data with --json.
func (p *Printer) AppLog(at time.Time, text string, data map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeAppLog, Time: at.UTC().Format(time.RFC3339Nano), Data: data})
		return
	}
	p.lineLocked(p.s.Out, "%s", text)
}

// Result writes the command's result: text on stdout for people and scripts,
// or a result event carrying data with --json.
func (p *Printer) Result(text string, data map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeResult, Data: data})
		return
	}
	if text == "" {
		return
	}
	p.clearStatusLocked()
	fmt.Fprintln(p.s.Out, strings.TrimRight(text, "\n"))
}

// Error reports the error that ends the run, with its class and fix.
func (p *Printer) Error(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	class := failure.ClassOf(err)
	fix := failure.FixOf(err)
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeError, Message: err.Error(), Class: class.String(), ExitCode: class.ExitCode(), Fix: fix})
		return
	}
	p.lineLocked(p.s.Err, "error: %s", err)
	if fix != "" {
		p.lineLocked(p.s.Err, "  fix: %s", fix)
	}
}

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

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func formatAmount(n int64, unit string) string {
	if unit != "bytes" {
		return fmt.Sprintf("%d", n)
	}
	return Bytes(n)
}

// Bytes prints a size in binary units: 512 B, 1.5 KiB, 18.8 MiB, 2.0 GiB.
func Bytes(n int64) string {
	const k = 1024
	switch {
	case n >= k*k*k:
		return fmt.Sprintf("%.1f GiB", float64(n)/(k*k*k))
	case n >= k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	case n >= k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	}
	return fmt.Sprintf("%d B", n)
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
