package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Recover clears what an interrupted or killed run left: Pulumi locks of dead
// processes on this host, and pending operations (cleared through refresh).
func (s *Stack) Recover(ctx context.Context) error {
	_, err := s.recover(ctx)
	return err
}

// recover is Recover that also counts the resources in the state, which
// the progress display expects the run to visit.
func (s *Stack) recover(ctx context.Context) (resources int, err error) {
	if err := s.breakStaleEngineLocks(ctx); err != nil {
		return 0, err
	}
	var state struct {
		Pending []struct {
			Type     string `json:"type"`
			Resource struct {
				URN string `json:"urn"`
			} `json:"resource"`
		} `json:"pending_operations"`
		Resources []struct{} `json:"resources"`
	}
	if err := s.readState(ctx, &state); err != nil {
		return 0, err
	}
	if len(state.Pending) == 0 {
		return len(state.Resources), nil
	}
	for _, op := range state.Pending {
		s.e.o.Warn("an interrupted run left %s %s pending; refreshing to resolve it", op.Type, op.Resource.URN)
	}
	if _, err := s.st.Refresh(ctx, optrefresh.ClearPendingCreates(), optrefresh.ShowSecrets(false), optrefresh.ProgressStreams(s.log()), optrefresh.ErrorProgressStreams(s.log())); err != nil {
		return 0, classifyCtx(ctx, fmt.Errorf("refresh to clear pending operations: %w", err))
	}
	for _, op := range state.Pending {
		if op.Type == "creating" {
			s.e.o.Warn("%s may exist outside state: check for it, or let `liftoff destroy` sweep it by tag", op.Resource.URN)
		}
	}
	return len(state.Resources), nil
}

// readState decodes the parts v names of the stack's state; an empty state
// leaves v as it is.
func (s *Stack) readState(ctx context.Context, v any) error {
	raw, err := s.deployment(ctx)
	if err != nil {
		return err
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return failure.New(failure.Engine, fmt.Errorf("parse state of %s: %w", s.name, err), "")
	}
	return nil
}

// deployment is the stack's state as JSON. On a file backend it is read
// from the checkpoint file (written by rename, so always whole), which takes
// a millisecond where `pulumi stack export` starts the CLI; anywhere else,
// or for a compressed checkpoint, it is exported.
func (s *Stack) deployment(ctx context.Context) (json.RawMessage, error) {
	if b, ok := s.checkpoint(); ok {
		var chk struct {
			Checkpoint struct {
				Latest json.RawMessage `json:"latest"`
			} `json:"checkpoint"`
		}
		if json.Unmarshal(b, &chk) == nil {
			return chk.Checkpoint.Latest, nil
		}
	}
	dep, err := s.st.Export(ctx)
	if err != nil {
		return nil, classify(fmt.Errorf("read state of %s: %w", s.name, err))
	}
	return dep.Deployment, nil
}

// StateResource is one resource in a stack's state.
type StateResource struct {
	Type string `json:"type"`
	Name string `json:"name"`
	URN  string `json:"urn"`
	// ID is the provider's id of the resource (namespace/name for a
	// Kubernetes object); empty for a component.
	ID string `json:"id,omitempty"`
}

// Resources lists what the stack's state holds, without the stack itself,
// its providers and what it only reads (stack references): what a destroy
// still has to delete.
func (s *Stack) Resources(ctx context.Context) ([]StateResource, error) {
	var state struct {
		Resources []struct {
			URN      string `json:"urn"`
			Type     string `json:"type"`
			ID       string `json:"id"`
			External bool   `json:"external"`
		} `json:"resources"`
	}
	if err := s.readState(ctx, &state); err != nil {
		return nil, err
	}
	var out []StateResource
	for _, r := range state.Resources {
		if r.External || r.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(r.Type, "pulumi:providers:") {
			continue
		}
		out = append(out, StateResource{Type: r.Type, Name: urnName(r.URN), URN: r.URN, ID: r.ID})
	}
	return out, nil
}

// repairSidecars removes the file backend's metadata sidecars (<file>.attrs:
// content type and MD5) that a run killed while writing one left empty or
// cut short. The blob library writes a sidecar in place, not by rename, so
// a SIGKILL at that moment makes every later read of the checkpoint fail
// with "failed to load checkpoint: EOF". A missing sidecar is read as
// defaults, and the next write makes a new one.
func (e *Engine) repairSidecars() {
	meta, ok := e.metaDir()
	if !ok {
		return
	}
	paths, _ := filepath.Glob(filepath.Join(meta, "stacks", e.project, "*.attrs"))
	more, _ := filepath.Glob(filepath.Join(meta, "stacks", "*.attrs"))
	paths = append(append(paths, more...), filepath.Join(meta, "meta.yaml.attrs"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || json.Valid(b) {
			continue
		}
		if err := os.Remove(p); err == nil {
			e.o.Warn("removed %s, cut short by a killed run (it held only the file's content type and checksum)", p)
		}
	}
}

// checkpoint reads the stack's checkpoint file from a file backend.
func (s *Stack) checkpoint() ([]byte, bool) {
	for _, p := range s.e.checkpointPaths(s.name) {
		if b, err := os.ReadFile(p); err == nil {
			return b, true
		}
	}
	return nil, false
}

// checkpointPaths are where a file backend keeps a stack's checkpoint: the
// project-scoped layout (.pulumi/stacks/<project>/<stack>.json) and the
// legacy one (.pulumi/stacks/<stack>.json). None on other backends.
func (e *Engine) checkpointPaths(stack string) []string {
	meta, ok := e.metaDir()
	if !ok || stack == "" || strings.ContainsAny(stack, `/\`) {
		return nil
	}
	return []string{filepath.Join(meta, "stacks", e.project, stack+".json"), filepath.Join(meta, "stacks", stack+".json")}
}

// hasCheckpoint reports whether a file backend holds the stack's checkpoint.
func (e *Engine) hasCheckpoint(stack string) bool {
	for _, p := range e.checkpointPaths(stack) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}
