package launch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/lock"
)

// StackLock says where stack locks live and who takes them: the lock that
// keeps two liftoff runs off one stack, beside the engine's own.
type StackLock struct {
	// Dir holds the locks, one file per project and stack.
	Dir string
	// Self is this run, as other runs see it while it holds a lock.
	Self lock.Holder
	// Wait is how long to queue behind another run (0: fail at once).
	Wait time.Duration
}

// Path is the lock file of project/stack.
func (s StackLock) Path(project, stack string) string {
	return filepath.Join(s.Dir, project, stack+".json")
}

// lockStack takes stack's lock for the whole operation and returns how to
// give it up; a held lock is a Locked failure naming its holder and the way out.
func (d Deps) lockStack(ctx context.Context, stack string) (release func(), err error) {
	path := d.StackLock.Path(d.Engine.Project(), stack)
	if d.StackLock.Wait > 0 {
		if h, _ := lock.Read(path); h != nil && lock.Alive(*h) {
			d.Printer.Infof("waiting up to %s for the lock held by %s", d.StackLock.Wait, h)
		}
	}
	l, err := lock.Acquire(ctx, path, d.StackLock.Self, lock.Options{Wait: d.StackLock.Wait, Warn: d.Printer.Warnf})
	var held *lock.HeldError
	if errors.As(err, &held) {
		return nil, failure.New(failure.Locked, fmt.Errorf("stack %s is %w", stack, err),
			"wait for that run, queue with --lock-wait 5m, or if it is dead on another machine: liftoff cancel --stack "+stack)
	}
	if err != nil {
		return nil, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	return func() {
		if err := l.Release(); err != nil {
			d.Printer.Warnf("release the lock of stack %s: %v", stack, err)
		}
	}, nil
}
