// Package lock is liftoff's stack lock: one run at a time per stack across
// every phase, a holder that is named in the error, and locks of processes
// that died on this host detected and broken.
package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Holder identifies who holds a lock.
type Holder struct {
	User    string    `json:"user"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Start   uint64    `json:"start,omitempty"` // process start time in clock ticks since boot; tells a reused pid apart
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
	CIRun   string    `json:"ci_run,omitempty"`
}

func (h Holder) String() string {
	s := fmt.Sprintf("%s@%s (pid %d", h.User, h.Host, h.PID)
	if h.Command != "" {
		s += ", " + h.Command
	}
	if h.CIRun != "" {
		s += ", CI run " + h.CIRun
	}
	return s + ") since " + h.Since.UTC().Format(time.RFC3339)
}

// Self describes the current process.
func Self(command string, getenv func(string) string, now time.Time) Holder {
	h := Holder{PID: os.Getpid(), Since: now, Command: command, CIRun: CIRun(getenv)}
	h.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	}
	if st, err := procStat(h.PID); err == nil {
		h.Start = st.start
	}
	return h
}

// CIRun names the CI run from the usual environment variables, if any.
func CIRun(getenv func(string) string) string {
	if id := getenv("GITHUB_RUN_ID"); id != "" {
		return strings.Trim(getenv("GITHUB_REPOSITORY")+"#"+id, "#")
	}
	for _, k := range []string{"CI_PIPELINE_ID", "BUILDKITE_BUILD_ID", "CIRCLE_WORKFLOW_ID", "BUILD_ID"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// HeldError is returned when another live process holds the lock.
type HeldError struct {
	Path   string
	Holder Holder
}

func (e *HeldError) Error() string {
	return "locked by " + e.Holder.String()
}

// Lock is a held lock.
type Lock struct {
	path string
	self Holder
}

// Options tune Acquire.
type Options struct {
	// Wait is how long to queue behind a live holder; zero fails at once.
	Wait time.Duration
	// Poll is the retry interval while waiting. Defaults to 500ms.
	Poll time.Duration
	// Warn is told when a dead holder's lock is broken.
	Warn func(format string, args ...any)
}

// Acquire takes the lock at path for self.
func Acquire(ctx context.Context, path string, self Holder, o Options) (*Lock, error) {
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(o.Wait)
	for {
		err := create(path, self)
		if err == nil {
			return &Lock{path: path, self: self}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		holder, broken, err := breakIfDead(path, o.Warn)
		if err != nil {
			return nil, err
		}
		if broken {
			continue
		}
		if holder == nil { // released between our attempts
			continue
		}
		if !time.Now().Before(deadline) {
			return nil, &HeldError{Path: path, Holder: *holder}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// Release drops the lock if this process still holds it.
func (l *Lock) Release() error {
	h, err := Read(l.path)
	if err != nil || h == nil {
		return err
	}
	if h.PID != l.self.PID || h.Host != l.self.Host || !h.Since.Equal(l.self.Since) {
		return fmt.Errorf("lock %s: now held by %s; leaving it", l.path, h)
	}
	return os.Remove(l.path)
}

// Read returns the holder of the lock at path, or nil when it is free.
func Read(path string) (*Holder, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h Holder
	if err := json.Unmarshal(b, &h); err != nil {
		// Locks are published whole, so this file is damaged: keep treating it
		// as held, and let `liftoff cancel` remove it.
		return &Holder{Host: "unknown", Command: "unreadable lock file " + path}, nil
	}
	return &h, nil
}

// Break removes the lock at path whoever holds it, for `liftoff cancel`.
func Break(path string) (*Holder, error) {
	h, err := Read(path)
	if err != nil || h == nil {
		return h, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	return h, nil
}

// Alive reports whether holder may still be running. Holders on other hosts
// cannot be checked and are assumed alive.
func Alive(h Holder) bool {
	alive, _ := check(h)
	return alive
}

// check is Alive with the holder's /proc stat when it was read (ok false
// otherwise: another host, a gone process, or no /proc).
func check(h Holder) (alive bool, st stat) {
	host, _ := os.Hostname()
	if h.Host != host {
		return true, stat{}
	}
	if err := syscall.Kill(h.PID, 0); errors.Is(err, syscall.ESRCH) {
		return false, stat{}
	}
	st, err := procStat(h.PID)
	if err != nil {
		return true, stat{} // no /proc: trust kill(2)
	}
	if st.state == "Z" || st.state == "X" {
		return false, st // exited, not yet reaped by its parent
	}
	if h.Start != 0 && st.start != h.Start {
		return false, st // the pid was reused by another process
	}
	return true, st
}

// Orphaned reports a live holder on this host whose parent is gone: it was
// handed to init (PID 1). A pulumi engine whose liftoff was killed is one;
// its program ran inside that liftoff, so it fails and exits in moments.
func Orphaned(h Holder) bool {
	alive, st := check(h) // another host's holder comes back without a stat (ppid 0)
	return alive && st.ppid == 1
}

// create writes the lock atomically: the content goes to a temp file first,
// and link(2) publishes it only if no lock exists, so no reader ever sees a
// lock file without its holder.
func create(path string, self Holder) error {
	b, err := json.Marshal(self)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lock-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// breakIfDead removes the lock when its holder is dead. An flock on a guard
// file makes check-and-remove atomic, so two waiters cannot both break it and
// one of them remove the other's fresh lock.
func breakIfDead(path string, warn func(string, ...any)) (*Holder, bool, error) {
	g, err := os.OpenFile(path+".guard", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	defer g.Close()
	if err := syscall.Flock(int(g.Fd()), syscall.LOCK_EX); err != nil {
		return nil, false, err
	}
	defer syscall.Flock(int(g.Fd()), syscall.LOCK_UN)
	h, err := Read(path)
	if err != nil || h == nil {
		return nil, false, err
	}
	if Alive(*h) {
		return h, false, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return h, false, err
	}
	if warn != nil {
		warn("broke a stale lock left by %s: that process is gone", h)
	}
	return h, true, nil
}

type stat struct {
	state string
	ppid  int
	start uint64 // clock ticks since boot
}

// procStat reads a process's state (field 3) and start time (field 22) from /proc.
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name (field 2) may contain spaces; fields after it start past the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 20 {
		return stat{}, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	ppid, _ := strconv.Atoi(fields[1])
	return stat{state: fields[0], ppid: ppid, start: start}, err
}
