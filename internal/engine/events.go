package engine

import (
	"io"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
)

// Progress receives engine events as they happen. *ui.Printer implements it.
type Progress interface {
	ResourceStarted(urn, typ, name, op string)
	ResourceDone(urn, typ, name, op string, failed bool)
	Diagnostic(severity, msg string)
	SetTotal(n int)
}

func (s *Stack) log() io.Writer {
	if s.e.o.Log != nil {
		return s.e.o.Log
	}
	return io.Discard
}

// drain waits for the event pump to finish. The Automation API closes the
// channel only when the CLI connected to its event server; a CLI that failed
// before (a locked stack) never does, so the wait is bounded.
func drain(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// pump forwards engine events to p until the operation closes the channel.
func (s *Stack) pump(p Progress) (chan events.EngineEvent, chan struct{}) {
	ch := make(chan events.EngineEvent, 64)
	done := make(chan struct{})
	s.mu.Lock()
	s.lastError, s.steps, s.summary = "", nil, nil
	s.mu.Unlock()
	go func() {
		defer close(done)
		for ev := range ch {
			if sum := ev.SummaryEvent; sum != nil {
				c := Changes{}
				for op, n := range sum.ResourceChanges {
					c[string(op)] = n
				}
				s.mu.Lock()
				s.summary = c
				s.mu.Unlock()
			}
			if pre := ev.ResourcePreEvent; pre != nil && pre.Metadata.Type != "pulumi:pulumi:Stack" && pre.Metadata.Op != "same" {
				s.mu.Lock()
				s.steps = append(s.steps, Step{Op: string(pre.Metadata.Op), Type: pre.Metadata.Type, Name: urnName(pre.Metadata.URN)})
				s.mu.Unlock()
			}
			if d := ev.DiagnosticEvent; d != nil && d.Severity == "error" && !strings.HasPrefix(strings.TrimSpace(d.Message), "update failed") {
				s.mu.Lock()
				if s.lastError == "" {
					s.lastError = strings.TrimSpace(stripANSI(d.Message))
					if d.URN != "" {
						s.lastError = urnName(d.URN) + ": " + s.lastError
					}
				}
				s.mu.Unlock()
			}
			if p != nil {
				forward(ev, p)
			}
		}
	}()
	return ch, done
}

func forward(ev events.EngineEvent, p Progress) {
	switch {
	case ev.ResourcePreEvent != nil:
		m := ev.ResourcePreEvent.Metadata
		if m.Type == "pulumi:pulumi:Stack" {
			return
		}
		p.ResourceStarted(m.URN, m.Type, urnName(m.URN), string(m.Op))
	case ev.ResOutputsEvent != nil:
		m := ev.ResOutputsEvent.Metadata
		if m.Type == "pulumi:pulumi:Stack" {
			return
		}
		p.ResourceDone(m.URN, m.Type, urnName(m.URN), string(m.Op), false)
	case ev.ResOpFailedEvent != nil:
		m := ev.ResOpFailedEvent.Metadata
		p.ResourceDone(m.URN, m.Type, urnName(m.URN), string(m.Op), true)
	case ev.DiagnosticEvent != nil:
		d := ev.DiagnosticEvent
		if d.Ephemeral || d.Severity == "debug" {
			return
		}
		msg := strings.TrimSpace(stripANSI(d.Message))
		if d.URN != "" {
			msg = urnName(d.URN) + ": " + msg
		}
		p.Diagnostic(d.Severity, msg)
	}
}

func urnName(urn string) string {
	if i := strings.LastIndex(urn, "::"); i >= 0 {
		return urn[i+2:]
	}
	return urn
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && !(s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	// Pulumi's own colour markup: <{%reset%}>, <{%fg 1%}>...
	out := b.String()
	for {
		i := strings.Index(out, "<{%")
		if i < 0 {
			return out
		}
		j := strings.Index(out[i:], "%}>")
		if j < 0 {
			return out
		}
		out = out[:i] + out[i+j+3:]
	}
}
