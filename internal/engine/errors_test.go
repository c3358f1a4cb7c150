package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// TestClassifyKeepsCause: a classified engine error reads briefly, and
// errors.Is/As still reach what the Automation API returned.
func TestClassifyKeepsCause(t *testing.T) {
	cause := errors.New("exit status 255")
	raw := fmt.Errorf("failed to run update: %w\ncode: 255\nstdout: lots\nstderr: \x1b[31merror:\x1b[0m the stack is currently locked by 1 lock(s)\n", cause)
	err := classify(raw)
	if failure.ClassOf(err) != failure.Locked {
		t.Errorf("class %v, want locked: %v", failure.ClassOf(err), err)
	}
	if !errors.Is(err, cause) || !errors.Is(err, raw) {
		t.Errorf("classify dropped the cause: %v", err)
	}
	if strings.Contains(err.Error(), "stdout") || !strings.Contains(err.Error(), "currently locked") {
		t.Errorf("message %q", err.Error())
	}
	for _, msg := range []string{"incorrect passphrase", "no stack named dev found", "something else broke"} {
		raw := fmt.Errorf("op: %w", errors.New(msg))
		if err := classify(raw); !errors.Is(err, raw) {
			t.Errorf("%q: cause lost: %v", msg, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = classifyCtx(ctx, raw)
	if failure.ClassOf(err) != failure.Interrupted || !errors.Is(err, context.Canceled) || !errors.Is(err, raw) {
		t.Errorf("interrupted run: %v (class %v)", err, failure.ClassOf(err))
	}
}
