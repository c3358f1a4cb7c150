package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/lock"
)

// CancelOptions are the flags of `liftoff cancel`.
type CancelOptions struct {
	f *Factory
}

// NewCmdCancel breaks the stack's locks.
func NewCmdCancel(f *Factory, runF func(*CancelOptions) error) *cobra.Command {
	o := &CancelOptions{f: f}
	return &cobra.Command{
		Use:   "cancel",
		Short: "Break the stack's locks, for a run that died on another machine",
		Long: `Break the stack's locks (liftoff's and the engine's). Locks of dead processes on
this machine are broken automatically by the next run; use cancel only for a run
that died elsewhere. Breaking the lock of a live run lets two runs collide.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return runCancel(cmd.Context(), o)
		},
	}
}

func runCancel(ctx context.Context, o *CancelOptions) error {
	f := o.f
	stack, err := f.StackName()
	if err != nil {
		return err
	}
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	path := f.LockPath(eng.Project(), stack)
	if h, _ := lock.Read(path); h != nil && lock.Alive(*h) {
		if err := f.Confirm(fmt.Sprintf("break the lock of a run that looks alive (%s)", h)); err != nil {
			return err
		}
	}
	var broken []lock.Holder
	h, err := lock.Break(path)
	if err != nil {
		return err
	}
	if h != nil {
		broken = append(broken, *h)
	}
	st, err := eng.Stack(ctx, stack, nil, false)
	if err != nil {
		return err
	}
	hs, err := st.BreakEngineLocks(ctx)
	if err != nil {
		return err
	}
	broken = append(broken, hs...)
	lines := []string{fmt.Sprintf("stack %s: no locks held", stack)}
	if len(broken) > 0 {
		lines = []string{fmt.Sprintf("stack %s: broke %d lock(s)", stack, len(broken))}
		for _, h := range broken {
			lines = append(lines, "  "+h.String())
		}
	}
	f.Printer().Result(strings.Join(lines, "\n"), cancelResult{Stack: stack, Broken: broken})
	return nil
}

// cancelResult is what `liftoff cancel` broke.
type cancelResult struct {
	Stack  string        `json:"stack"`
	Broken []lock.Holder `json:"broken"`
}
