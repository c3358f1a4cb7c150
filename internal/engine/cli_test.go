package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIVersionCached: the CLI is asked its version once per binary; a
// replaced binary is asked again, and one older than liftoff drives is
// refused. Calls then run as the Automation API runs them.
func TestCLIVersionCached(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	calls := filepath.Join(dir, "calls")
	fake := filepath.Join(dir, "pulumi")
	write := func(version string) {
		script := "#!/bin/sh\necho \"$@\" >> " + calls + "\nif [ \"$1\" = version ]; then echo v" + version + "; exit 0; fi\necho \"PATH=$PATH AUTO=$PULUMI_AUTOMATION_API\"\n"
		if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asked := func() int {
		b, _ := os.ReadFile(calls)
		return strings.Count(string(b), "version\n")
	}
	write("3.259.0")
	for i := 0; i < 3; i++ {
		cmd, err := commandAt(fake, cache, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Version().String() != "3.259.0" {
			t.Fatalf("version %s", cmd.Version())
		}
	}
	if n := asked(); n != 1 {
		t.Errorf("asked the version %d times for one binary", n)
	}

	time.Sleep(10 * time.Millisecond)
	write("3.100.0")
	if _, err := commandAt(fake, cache, nil); err == nil || !strings.Contains(err.Error(), "older than") {
		t.Errorf("an old CLI: %v", err)
	}
	if n := asked(); n != 2 {
		t.Errorf("a replaced binary was not asked again (%d)", n)
	}

	write("3.259.0")
	var log bytes.Buffer
	cmd, err := commandAt(fake, cache, &log)
	if err != nil {
		t.Fatal(err)
	}
	out, _, code, err := cmd.Run(context.Background(), dir, nil, nil, nil, []string{"X=1"}, "stack", "ls")
	if err != nil || code != 0 {
		t.Fatalf("run: %v %d", err, code)
	}
	if !strings.HasPrefix(out, "PATH="+dir+string(os.PathListSeparator)) || !strings.Contains(out, "AUTO=true") {
		t.Errorf("environment %q", out)
	}
	if b, _ := os.ReadFile(calls); !strings.Contains(string(b), "--non-interactive stack ls\n") {
		t.Errorf("calls %q", b)
	}
	if !strings.HasPrefix(log.String(), "pulumi stack ls: ") {
		t.Errorf("verbose log %q", log.String())
	}
}
