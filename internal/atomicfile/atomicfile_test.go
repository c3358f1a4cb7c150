package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A writer SIGKILLed at any moment leaves the old content or the new one,
// whole: never an empty, truncated or mixed file.
func TestKilledWriterLeavesWholeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	const size = 4 << 20
	if err := Write(path, bytes.Repeat([]byte("a"), size), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "ATOMICFILE_WRITER="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(5+i*7) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != size || !bytes.Equal(b, bytes.Repeat(b[:1], size)) {
			t.Fatalf("after a kill at %d ms: %d bytes, first %q", 5+i*7, len(b), b[:min(len(b), 1)])
		}
	}
}

// TestHelperWriter is the writer the test above kills: it rewrites the file
// with a's and b's in turn, forever.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("ATOMICFILE_WRITER")
	if path == "" {
		t.Skip("run by TestKilledWriterLeavesWholeFile")
	}
	for i := 0; ; i++ {
		Write(path, bytes.Repeat([]byte{"ab"[i%2]}, 4<<20), 0o600)
	}
}

// Concurrent read-modify-writes lose no update.
func TestUpdatesSerialise(t *testing.T) {
	path := filepath.Join(t.TempDir(), "counter")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				err := Update(path, 0o600, func(old []byte, _ bool) ([]byte, error) {
					n, _ := strconv.Atoi(string(old))
					return []byte(strconv.Itoa(n + 1)), nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if b, _ := os.ReadFile(path); string(b) != "200" {
		t.Errorf("counter %s after 200 updates", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	// A change that fails, or writes nothing, leaves the file as it was.
	Update(path, 0o600, func([]byte, bool) ([]byte, error) { return nil, fmt.Errorf("no") })
	Update(path, 0o600, func([]byte, bool) ([]byte, error) { return nil, nil })
	if b, _ := os.ReadFile(path); string(b) != "200" {
		t.Errorf("counter %s after a failed update", b)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".counter.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
