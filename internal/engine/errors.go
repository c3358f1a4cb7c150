package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// brief is an error told in a few words that keeps its causes: the
// Automation API's error (with the CLI's whole output) stays reachable
// through errors.Is and errors.As.
type brief struct {
	msg    string
	causes []error
}

func (b *brief) Error() string   { return b.msg }
func (b *brief) Unwrap() []error { return b.causes }

// classifyCtx is classify, except that a run stopped by ctx is an
// interruption (its cause and ctx's error both kept).
func classifyCtx(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return failure.New(failure.Interrupted, &brief{"interrupted: " + ctx.Err().Error(), []error{ctx.Err(), err}}, "rerun the command: liftoff recovers the stack")
	}
	return classify(err)
}

// classify turns an Automation API error into a classified, readable one.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	msg := err.Error()
	short := engineMessage(msg)
	switch {
	case auto.IsConcurrentUpdateError(err) || strings.Contains(msg, "the stack is currently locked"):
		return failure.New(failure.Locked, &brief{short, []error{err}}, "wait for the other run, pass --lock-wait 5m, or break a dead run's lock with liftoff cancel")
	case strings.Contains(msg, "incorrect passphrase") || strings.Contains(msg, "passphrase must be set") ||
		strings.Contains(msg, "PULUMI_CONFIG_PASSPHRASE"):
		return failure.New(failure.Auth, &brief{"the passphrase does not open this stack's secrets", []error{err}}, "set LIFTOFF_PASSPHRASE (or LIFTOFF_PASSPHRASE_FILE) to the passphrase the stack was created with")
	case strings.Contains(msg, "no stack named") || strings.Contains(msg, "no stack found"):
		return failure.New(failure.NotFound, &brief{short, []error{err}}, "list stacks with liftoff stacks ls")
	}
	return failure.New(failure.Engine, &brief{short, []error{err}}, "see the diagnostics above; rerun with --verbose for the engine's full output")
}

// engineMessage keeps the error lines of the CLI's stderr and drops the
// Automation API's dump of both streams.
func engineMessage(msg string) string {
	head, rest, found := strings.Cut(msg, "\ncode:")
	if !found {
		return msg
	}
	var lines []string
	if _, stderr, ok := strings.Cut(rest, "\nstderr:"); ok {
		for _, l := range strings.Split(stderr, "\n") {
			l = strings.TrimSpace(stripANSI(l))
			if strings.HasPrefix(l, "error:") {
				lines = append(lines, strings.TrimSpace(strings.TrimPrefix(l, "error:")))
			} else if len(lines) > 0 && l != "" && len(lines) < 8 {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		return head
	}
	before, _, _ := strings.Cut(head, ":")
	return before + ": " + strings.Join(lines, "\n  ")
}
