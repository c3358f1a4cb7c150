package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/lock"
)

// EngineLockDir is where the Pulumi file backend keeps this stack's locks.
func (s *Stack) EngineLockDir() (string, bool) {
	meta, ok := s.e.metaDir()
	if !ok {
		return "", false
	}
	return filepath.Join(meta, "locks", "organization", s.e.project, s.name), true
}

// metaDir is where a file backend keeps its state (<dir>/.pulumi): stacks,
// locks, history and their metadata sidecars.
func (e *Engine) metaDir() (string, bool) {
	dir, ok := FileBackendDir(e.o.BackendURL())
	if !ok {
		return "", false
	}
	return filepath.Join(dir, ".pulumi"), true
}

// breakStaleEngineLocks removes the Pulumi locks of dead processes on this
// host. A lock held by an orphaned engine (its liftoff was killed, so its
// program is gone) is waited for, up to orphanWait: the engine fails on its
// own moments later and releases it, and the run can go on instead of
// stopping as locked.
func (s *Stack) breakStaleEngineLocks(ctx context.Context) error {
	dir, ok := s.EngineLockDir()
	if !ok {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil // no locks
	}
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		h, err := readEngineLock(p)
		if err != nil {
			continue
		}
		if lock.Orphaned(h) {
			s.e.o.Warn("waiting for the pulumi engine a killed run left (pid %d) to stop", h.PID)
			deadline := time.Now().Add(orphanWait)
			for lock.Alive(h) && time.Now().Before(deadline) {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
		if lock.Alive(h) {
			continue
		}
		if err := os.Remove(p); err == nil {
			s.e.o.Warn("removed a pulumi lock left by %s: that process is gone", h)
		}
	}
	return nil
}

// orphanWait bounds the wait for an orphaned engine to stop.
const orphanWait = 30 * time.Second

// BreakEngineLocks removes every Pulumi lock of the stack, for `liftoff cancel`.
func (s *Stack) BreakEngineLocks(ctx context.Context) ([]lock.Holder, error) {
	dir, ok := s.EngineLockDir()
	if !ok {
		if err := s.st.Cancel(ctx); err != nil {
			return nil, classify(fmt.Errorf("cancel: %w", err))
		}
		return nil, nil
	}
	entries, _ := os.ReadDir(dir)
	var out []lock.Holder
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		if h, err := readEngineLock(p); err == nil {
			out = append(out, h)
		}
		if err := os.Remove(p); err != nil {
			return out, err
		}
	}
	return out, nil
}

func readEngineLock(path string) (lock.Holder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return lock.Holder{}, err
	}
	var c struct {
		Pid       int       `json:"pid"`
		Username  string    `json:"username"`
		Hostname  string    `json:"hostname"`
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return lock.Holder{}, err
	}
	return lock.Holder{User: c.Username, Host: c.Hostname, PID: c.Pid, Since: c.Timestamp, Command: "pulumi"}, nil
}

// FileBackendDir returns the directory of a file:// backend.
func FileBackendDir(backend string) (string, bool) {
	u, err := url.Parse(backend)
	if err != nil || u.Scheme != "file" {
		return "", false
	}
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = u.Host + p // file://relative/path
	}
	if strings.HasPrefix(p, "~") {
		home, _ := os.UserHomeDir()
		p = filepath.Join(home, p[1:])
	}
	return p, true
}
