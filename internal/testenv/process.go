package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a server started by a test, logging to a file in its temp dir.
type Process struct {
	Name    string
	Log     string
	cmd     *exec.Cmd
	argv    []string
	cred    *syscall.Credential
	env     []string
	ready   func() error
	stopped bool
	// stopSignal asks the server to stop; SIGTERM unless set.
	stopSignal syscall.Signal
	// readyTimeout bounds the wait for ready (30s unless set).
	readyTimeout time.Duration
}

func newProcess(t testing.TB, name string, argv []string, cred *syscall.Credential, env []string, ready func() error) *Process {
	t.Helper()
	p, err := startProcess(filepath.Join(t.TempDir(), name+".log"), name, argv, cred, env, ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

func startProcess(log, name string, argv []string, cred *syscall.Credential, env []string, ready func() error) (*Process, error) {
	return startProcessWithin(log, name, argv, cred, env, ready, 0)
}

// startProcessWithin is startProcess with its own bound on the wait for ready.
func startProcessWithin(log, name string, argv []string, cred *syscall.Credential, env []string, ready func() error, within time.Duration) (*Process, error) {
	p := &Process{Name: name, Log: log, argv: argv, cred: cred, env: env, ready: ready, readyTimeout: within}
	return p, p.Start()
}

// spawner starts children from one goroutine locked to its OS thread, which
// never exits: the kernel sends a child its parent-death signal when the
// creating thread ends, so this thread must live as long as the process.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// StartWithTest starts cmd so that it dies with the test binary (killed by
// its timeout, or by a closed pipe when its output is cut short): SIGKILL as
// its parent-death signal, started from the spawner's thread.
func StartWithTest(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return spawn(cmd)
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, done: make(chan error)}
	spawner.reqs <- r
	return <-r.done
}

// PID is the running process's id, which is also its process group's (0 before Start).
func (p *Process) PID() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Start runs the process and waits until ready reports success (30s at most,
// or its readyTimeout).
func (p *Process) Start() error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	// Pdeathsig: a test binary killed by its timeout takes its servers with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	if err := spawn(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	logf.Close()
	p.cmd, p.stopped = cmd, false
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	within := p.readyTimeout
	if within == 0 {
		within = 30 * time.Second
	}
	deadline := time.Now().Add(within)
	for {
		err := p.ready()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited during start:\n%s", p.Name, p.Tail(30))
		default:
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("%s not ready after %s (%v):\n%s", p.Name, within, err, p.Tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop terminates the process group: its stop signal, then SIGKILL after 10s.
func (p *Process) Stop() {
	if p.cmd == nil || p.stopped {
		return
	}
	p.stopped = true
	pgid := p.cmd.Process.Pid
	sig := p.stopSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	syscall.Kill(-pgid, sig)
	for i := 0; i < 200; i++ {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

// Kill stops the process group at once, like a crash.
func (p *Process) Kill() {
	if p.cmd == nil || p.stopped {
		return
	}
	p.stopped = true
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(-p.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the process group (SIGSTOP freezes it, SIGCONT resumes).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.cmd == nil || p.stopped {
		return errors.New(p.Name + " is not running")
	}
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Tail returns the last n lines of the log.
func (p *Process) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var errNotReady = errors.New("not ready")
