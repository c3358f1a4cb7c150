package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func self(cmd string) Holder {
	return Self(cmd, func(string) string { return "" }, time.Now())
}

func TestHeldAndQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "dev.json")
	ctx := context.Background()
	a, err := Acquire(ctx, path, self("liftoff up"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(ctx, path, self("liftoff destroy"), Options{})
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second acquire: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(msg, "liftoff up") {
		t.Errorf("holder not named: %s", msg)
	}

	go func() { time.Sleep(200 * time.Millisecond); a.Release() }()
	b, err := Acquire(ctx, path, self("liftoff destroy"), Options{Wait: 10 * time.Second, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("queued acquire: %v", err)
	}
	if h, _ := Read(path); h == nil || h.Command != "liftoff destroy" {
		t.Errorf("holder after queue: %v", h)
	}
	b.Release()
	if h, _ := Read(path); h != nil {
		t.Errorf("not released: %v", h)
	}
}

func TestDeadHolderBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.json")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := self("liftoff up")
	dead.PID = cmd.Process.Pid // exited and reaped
	dead.Start = 0
	writeHolder(t, path, dead)

	var warned []string
	l, err := Acquire(context.Background(), path, self("liftoff up"), Options{Warn: func(f string, a ...any) { warned = append(warned, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if len(warned) != 1 || !strings.Contains(warned[0], "stale lock") {
		t.Errorf("warnings: %v", warned)
	}
}

func TestReusedPIDBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.json")
	h := self("liftoff up")
	h.Start++ // same pid as a live process, but a different process
	writeHolder(t, path, h)
	if Alive(h) {
		t.Fatal("reused pid counted alive")
	}
	l, err := Acquire(context.Background(), path, self("x"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestOtherHostNeverBroken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.json")
	h := Holder{User: "ci", Host: "runner-7", PID: 1, Since: time.Now()}
	writeHolder(t, path, h)
	_, err := Acquire(context.Background(), path, self("x"), Options{})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.Host != "runner-7" {
		t.Fatalf("got %v", err)
	}
	if got, err := Break(path); err != nil || got.Host != "runner-7" {
		t.Fatalf("break: %v %v", got, err)
	}
	if h, _ := Read(path); h != nil {
		t.Error("lock still there after Break")
	}
}

func TestOneWinner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev.json")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Acquire(context.Background(), path, self("x"), Options{}); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d holders at once", wins)
	}
}

func TestCIRun(t *testing.T) {
	env := map[string]string{"GITHUB_RUN_ID": "99", "GITHUB_REPOSITORY": "acme/app"}
	if got := CIRun(func(k string) string { return env[k] }); got != "acme/app#99" {
		t.Errorf("got %q", got)
	}
}

func writeHolder(t *testing.T, path string, h Holder) {
	t.Helper()
	b, _ := json.Marshal(h)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestOrphaned: a process whose parent exited (handed to init) is orphaned;
// a child whose parent lives is not, nor is a process that is gone.
func TestOrphaned(t *testing.T) {
	host, _ := os.Hostname()
	out, err := exec.Command("sh", "-c", "sleep 2 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	if st, err := procStat(pid); err != nil {
		t.Fatal(err)
	} else if st.ppid != 1 {
		t.Skipf("orphans are adopted by a subreaper (pid %d) here, not init: Orphaned only recognises init's", st.ppid)
	}
	if !Orphaned(Holder{Host: host, PID: pid}) {
		t.Error("a process handed to init is not orphaned")
	}
	child := exec.Command("sleep", "2")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer child.Process.Kill()
	if Orphaned(Holder{Host: host, PID: child.Process.Pid}) {
		t.Error("a child of this test is orphaned")
	}
	if Orphaned(Holder{Host: "elsewhere", PID: pid}) {
		t.Error("a process on another host is orphaned")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && Alive(Holder{Host: host, PID: pid}); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if Orphaned(Holder{Host: host, PID: pid}) {
		t.Error("a killed process is orphaned")
	}
}
