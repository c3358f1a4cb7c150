// Package atomicfile writes files the way liftoff's own state must be
// written: whole or not at all (a temporary file beside the target, synced,
// then renamed over it), and one writer at a time (an flock on a lock file
// beside it), so a SIGKILL or two terminals at once never leave an empty,
// truncated or mixed file.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Update reads path (exists is false when it is missing), lets change
// compute the new content, and writes it, all under path's lock: a
// read-modify-write no other Update interleaves with. change returning nil
// content and no error writes nothing.
func Update(path string, perm os.FileMode, change func(old []byte, exists bool) ([]byte, error)) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	unlock, err := lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	b, err := change(old, exists)
	if err != nil || b == nil {
		return err
	}
	return replace(path, b, perm)
}

// Write replaces path's content with b, atomically, under path's lock.
func Write(path string, b []byte, perm os.FileMode) error {
	return Update(path, perm, func([]byte, bool) ([]byte, error) { return b, nil })
}

// lock takes an exclusive flock on path's lock file (kept beside it: a lock
// on path itself would be lost when the rename replaces the file).
func lock(path string) (func(), error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// replace writes b to a temporary file in path's directory, syncs it and
// renames it over path, then syncs the directory so the rename survives a
// power cut too.
func replace(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
