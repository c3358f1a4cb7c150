package ui

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Summary prints the closing summary of a run: outputs (already masked) for
// people, and data, the run's typed result, as the event's data with
// --json; a result that carries phase timings (Phased) gets a "took" line.
func (p *Printer) Summary(title string, outputs map[string]any, data any) {
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
	if phases := phasesOf(data); len(phases) > 0 {
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

// Summarizer is a run's typed result with its closing summary for people:
// a title and the fields worth reading (masked).
type Summarizer interface {
	Summary() (title string, outputs map[string]any)
}

// Summarize prints s's summary; with --json, s itself is the event's data.
func (p *Printer) Summarize(s Summarizer) {
	title, outs := s.Summary()
	p.Summary(title, outs, s)
}

// PhaseTiming is one phase's outcome in a summary.
type PhaseTiming struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, skipped, failed
	Millis int64  `json:"duration_ms"`
}

// AppLog writes one line of the app's own log (liftoff logs): text for
// people, or an app_log event at the line's time carrying data with --json.
func (p *Printer) AppLog(at time.Time, text string, data any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.opts.JSON {
		p.emitLocked(Event{Type: TypeAppLog, Time: at.UTC().Format(time.RFC3339Nano), Data: data})
		return
	}
	p.lineLocked(p.s.Out, "%s", text)
}

// Result writes the command's result: text on stdout for people and
// scripts, or a result event carrying data, the command's typed result,
// with --json.
func (p *Printer) Result(text string, data any) {
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

// Phased is a result that records how long each phase of its run took.
type Phased interface{ PhaseTimings() []PhaseTiming }

func phasesOf(data any) []PhaseTiming {
	if p, ok := data.(Phased); ok {
		return p.PhaseTimings()
	}
	return nil
}
