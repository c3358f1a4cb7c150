package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// stateDir holds the machine-wide locks of real nodes: one lock file per
// address slot, so test packages running at once never share a network
// namespace name, an address range or a cgroup. The last node out removes it.
const stateDir = "/run/liftoff-testenv"

// maxSlots bounds how many real nodes can run on one machine at once.
const maxSlots = 200

// slot is one held address slot. Its lock file records who holds it and
// where its files are, so a holder that was killed can be cleaned up by the
// next one to take the slot.
type slot struct {
	n    int
	file *os.File
}

// slotRecord is what a lock file says about its holder.
type slotRecord struct {
	PID int    `json:"pid"`
	Dir string `json:"dir"`
}

// machineLock serialises, across processes, every change to the state
// directory and to what nodes share (the sysctls kubelet changes at start,
// the default paths): an exclusive flock on the directory itself.
func machineLock() (unlock func(), err error) {
	for range 100 {
		if err := os.MkdirAll(stateDir, 0o755); err != nil {
			return nil, err
		}
		f, err := os.Open(stateDir)
		if errors.Is(err, os.ErrNotExist) {
			continue // removed by the last node out: make it again
		}
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", stateDir, err)
		}
		held, err1 := f.Stat()
		now, err2 := os.Stat(stateDir)
		if err1 == nil && err2 == nil && os.SameFile(held, now) {
			return func() { f.Close() }, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: it keeps being removed", stateDir)
}

// acquireSlot takes the first free slot; the caller holds machineLock. It
// also returns what the holders of slots that died without cleaning up
// recorded: every slot file that no one holds but still names a directory.
func acquireSlot() (*slot, map[int]slotRecord, error) {
	stale := map[int]slotRecord{}
	ents, _ := os.ReadDir(stateDir)
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(e.Name(), "slot-"), ".lock"))
		if err != nil {
			continue
		}
		f, err := os.Open(slotPath(n))
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			var rec slotRecord
			if b, _ := os.ReadFile(slotPath(n)); len(b) > 0 && json.Unmarshal(b, &rec) == nil && rec.Dir != "" {
				stale[n] = rec
			}
		}
		f.Close()
	}
	for n := 1; n <= maxSlots; n++ {
		f, err := os.OpenFile(slotPath(n), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, nil, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &slot{n: n, file: f}, stale, nil
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("lock %s: %w", slotPath(n), err)
		}
	}
	return nil, nil, fmt.Errorf("all %d real-node slots under %s are held: too many clusters at once", maxSlots, stateDir)
}

func slotPath(n int) string { return filepath.Join(stateDir, "slot-"+strconv.Itoa(n)+".lock") }

// record notes the holder's files in the lock file.
func (s *slot) record(dir string) error {
	b, _ := json.Marshal(slotRecord{PID: os.Getpid(), Dir: dir})
	if err := s.file.Truncate(0); err != nil {
		return err
	}
	_, err := s.file.WriteAt(b, 0)
	return err
}

// release frees the slot; the caller holds machineLock.
func (s *slot) release() {
	os.Remove(slotPath(s.n))
	s.file.Close()
}

// othersHeld reports whether any other slot is held right now (the caller
// holds machineLock): what nodes share is cleaned by the last one out.
func (s *slot) othersHeld() bool {
	ents, _ := os.ReadDir(stateDir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "slot-") || e.Name() == filepath.Base(slotPath(s.n)) {
			continue
		}
		f, err := os.Open(filepath.Join(stateDir, e.Name()))
		if err != nil {
			continue
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		f.Close() // closing drops a lock we may have taken
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true
		}
	}
	return false
}
