package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/opthistory"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Stack is one stack of the project.
type Stack struct {
	e    *Engine
	st   auto.Stack
	name string
	// Refresh makes Up and Preview read every resource's live state first,
	// so a change made by hand (drift) shows, and up repairs it.
	Refresh bool

	mu        sync.Mutex
	lastError string  // the engine's last error diagnostic, for the error message
	steps     []Step  // what the last run did or planned, but for unchanged resources
	summary   Changes // the last run's summary event, by operation
}

// Step is one resource the engine created, updated, replaced, deleted or
// (in a refresh) found changed outside it.
type Step struct {
	Op   string `json:"op"`
	Type string `json:"type"`
	Name string `json:"name"`
}

// Steps are the last run's steps, in order.
func (s *Stack) Steps() []Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Step(nil), s.steps...)
}

// Name is the stack's name.
func (s *Stack) Name() string { return s.name }

// Output is one stack output.
type Output struct {
	Value  any  `json:"value"`
	Secret bool `json:"secret"`
}

// Outputs are a stack's outputs.
type Outputs map[string]Output

// Values returns the outputs' plain values, secrets revealed: for liftoff
// to act on (outputs.Decode), never to print.
func (o Outputs) Values() map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		out[k] = v.Value
	}
	return out
}

// Masked returns the outputs with every secret replaced by "[secret]".
func (o Outputs) Masked() map[string]any {
	out := make(map[string]any, len(o))
	for k, v := range o {
		if v.Secret {
			out[k] = "[secret]"
		} else {
			out[k] = v.Value
		}
	}
	return out
}

// String returns a non-secret string output, or "".
func (o Outputs) String(key string) string {
	if v, ok := o[key]; ok && !v.Secret {
		s, _ := v.Value.(string)
		return s
	}
	return ""
}

func outputs(m auto.OutputMap) Outputs {
	out := Outputs{}
	for k, v := range m {
		out[k] = Output{Value: v.Value, Secret: v.Secret}
	}
	return out
}

// Up applies the program and counts the steps it took by operation. It
// first recovers what a killed run left behind.
func (s *Stack) Up(ctx context.Context, p Progress) (Outputs, Changes, error) {
	if err := s.begin(ctx, p); err != nil {
		return nil, nil, err
	}
	ch, done := s.pump(p)
	// ShowSecrets(false): the summary the Automation API reads from the
	// history after the run needs no secret, and decrypting costs a key
	// derivation in the CLI.
	opts := []optup.Option{optup.EventStreams(ch), optup.ProgressStreams(s.log()), optup.ErrorProgressStreams(s.log()), optup.ShowSecrets(false)}
	if s.Refresh {
		opts = append(opts, optup.Refresh())
	}
	var post *postUp
	upCtx := ctx
	if s.e.hasCheckpoint(s.name) {
		post = &postUp{}
		upCtx = context.WithValue(ctx, postUpKey{}, post)
		s.deriveKeyAhead(ctx)
	}
	res, err := s.st.Up(upCtx, opts...)
	drain(done)
	if err != nil {
		return nil, nil, s.failed(ctx, "pulumi up", err)
	}
	if post == nil || !post.answered {
		return outputs(res.Outputs), changesOf(res.Summary), nil
	}
	outs, err := s.Outputs(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	c := s.summary
	s.mu.Unlock()
	if c == nil { // the summary event did not arrive: ask the history
		h, err := s.st.History(ctx, 1, 1, opthistory.ShowSecrets(false))
		if err != nil {
			return nil, nil, classify(fmt.Errorf("history of %s: %w", s.name, err))
		}
		c = Changes{}
		if len(h) > 0 {
			c = changesOf(h[0])
		}
	}
	return outs, c, nil
}

// changesOf counts a history entry's steps by operation.
func changesOf(u auto.UpdateSummary) Changes {
	c := Changes{}
	if u.ResourceChanges != nil {
		for op, n := range *u.ResourceChanges {
			c[op] = n
		}
	}
	return c
}

// postUp marks an up's context for the CLI wrapper: after every up the
// Automation API runs `pulumi stack output` twice (plain, then decrypting)
// and `pulumi stack history` (0.8-0.9 s of an up with nothing to do), only
// to fill in the result's outputs and summary. When the checkpoint is on
// disk, the wrapper answers those reads with nothing and Up reads the same
// facts itself: the outputs from the checkpoint (Outputs) and the changes
// from the run's summary event.
type postUp struct {
	upDone   bool // the up itself succeeded; only the reads after it are answered
	answered bool
}

type postUpKey struct{}

// begin readies a run: what a killed run left is recovered, and the
// progress total is the number of resources in the state.
func (s *Stack) begin(ctx context.Context, p Progress) error {
	n, err := s.recover(ctx)
	if err == nil && n > 0 && p != nil {
		p.SetTotal(n)
	}
	return err
}

// Changes counts planned or applied steps by operation (create, update, same, ...).
type Changes map[string]int

// HasChanges reports whether any step other than "same" (or a refresh's
// read) is counted.
func (c Changes) HasChanges() bool {
	for op, n := range c {
		if op != "same" && op != "refresh" && n > 0 {
			return true
		}
	}
	return false
}

// Preview plans the program without changing anything.
func (s *Stack) Preview(ctx context.Context, p Progress) (Changes, error) {
	if err := s.Recover(ctx); err != nil {
		return nil, err
	}
	ch, done := s.pump(p)
	opts := []optpreview.Option{optpreview.EventStreams(ch), optpreview.ProgressStreams(s.log()), optpreview.ErrorProgressStreams(s.log())}
	if s.Refresh {
		opts = append(opts, optpreview.Refresh())
	}
	res, err := s.st.Preview(ctx, opts...)
	drain(done)
	if err != nil {
		return nil, s.failed(ctx, "pulumi preview", err)
	}
	c := Changes{}
	for op, n := range res.ChangeSummary {
		c[string(op)] = n
	}
	return c, nil
}

// Destroy deletes every resource of the stack; its state remains until RemoveStack.
func (s *Stack) Destroy(ctx context.Context, p Progress) error {
	if err := s.begin(ctx, p); err != nil {
		return err
	}
	ch, done := s.pump(p)
	_, err := s.st.Destroy(ctx, optdestroy.EventStreams(ch), optdestroy.ShowSecrets(false), optdestroy.ProgressStreams(s.log()), optdestroy.ErrorProgressStreams(s.log()))
	drain(done)
	if err != nil {
		return s.failed(ctx, "pulumi destroy", err)
	}
	return nil
}

// failed classifies an operation's error, naming the engine's own error
// diagnostic when the CLI's exit status says nothing more.
func (s *Stack) failed(ctx context.Context, op string, err error) error {
	s.mu.Lock()
	diag := s.lastError
	s.mu.Unlock()
	if diag != "" && ctx.Err() == nil && !strings.Contains(engineMessage(err.Error()), "\n") {
		if cl := classify(err); failure.ClassOf(cl) == failure.Engine {
			return failure.New(failure.Engine, fmt.Errorf("%s: %s", op, diag), failure.FixOf(cl))
		}
	}
	return classifyCtx(ctx, fmt.Errorf("%s: %w", op, err))
}

// Outputs returns the stack's current outputs without running the program:
// from the checkpoint when a file backend holds it (localOutputs), else
// from the CLI.
func (s *Stack) Outputs(ctx context.Context) (Outputs, error) {
	if o, err := s.localOutputs(ctx); err == nil {
		return o, nil
	}
	m, err := s.st.Outputs(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("read outputs of %s: %w", s.name, err))
	}
	return outputs(m), nil
}

// LastUpdate describes the most recent operation on the stack.
type LastUpdate struct {
	Kind      string         `json:"kind"`
	Result    string         `json:"result"`
	StartTime time.Time      `json:"start_time"`
	EndTime   time.Time      `json:"end_time,omitzero"`
	Changes   map[string]int `json:"changes,omitempty"`
}

// LastUpdate returns the latest history entry, or nil for a new stack.
func (s *Stack) LastUpdate(ctx context.Context) (*LastUpdate, error) {
	h, err := s.st.History(ctx, 1, 1, opthistory.ShowSecrets(false))
	if err != nil {
		return nil, classify(fmt.Errorf("history of %s: %w", s.name, err))
	}
	if len(h) == 0 {
		return nil, nil
	}
	u := &LastUpdate{Kind: h[0].Kind, Result: h[0].Result}
	u.StartTime, _ = time.Parse(time.RFC3339, h[0].StartTime)
	if h[0].EndTime != nil {
		u.EndTime, _ = time.Parse(time.RFC3339, *h[0].EndTime)
	}
	if h[0].ResourceChanges != nil {
		u.Changes = *h[0].ResourceChanges
	}
	return u, nil
}
