package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// ExecOptions are the flags of `liftoff exec`.
type ExecOptions struct {
	f       *Factory
	Cluster ClusterFlags
	Slot    string
	Pod     string
	Command []string
}

// exitError carries a remote command's exit code out of `liftoff exec`.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("the command exited with code %d", int(e)) }

// NewCmdExec runs a one-off command in a pod of the app.
func NewCmdExec(f *Factory, runF func(*ExecOptions) error) *cobra.Command {
	o := &ExecOptions{f: f}
	cmd := &cobra.Command{
		Use:   "exec [--slot live] [--pod NAME] -- CMD [ARGS...]",
		Short: "Run a command in a ready pod of the app (a TTY when interactive) and exit with its code",
		Long: `Exec runs a command in one ready pod of a slot (the live one by default), streams
stdin, stdout and stderr, gives it a TTY when both ends are terminals, and exits
with the command's exit code. The app's binary is on the image's PATH under its
package name.`,
		Example: `  liftoff exec -- shortener migrate
  liftoff exec --slot preview -- shortener version
  liftoff exec --pod shortener-green-7d9c5-x2k4p -- shortener printenv CACHE_URL`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Command = args
			if len(args) == 0 {
				return failure.Newf(failure.Config, "liftoff exec -- CMD [ARGS...], e.g. liftoff exec -- shortener migrate", "no command to run")
			}
			if o.Pod == "" {
				if err := rollout.ValidSlotSelector(o.Slot, false); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(o)
			}
			return runExec(cmd.Context(), o)
		},
	}
	o.Cluster.register(cmd.Flags())
	cmd.Flags().StringVar(&o.Slot, "slot", rollout.SlotLive, "run in a pod of this slot: live, preview, blue or green")
	cmd.Flags().StringVar(&o.Pod, "pod", "", "run in this pod of the app")
	return cmd
}

func runExec(ctx context.Context, o *ExecOptions) error {
	f := o.f
	e, _, err := f.appClient(ctx, o.Cluster, "exec")
	if err != nil {
		return err
	}
	xo := rollout.ExecOptions{Slot: o.Slot, Pod: o.Pod, Command: o.Command, Stdin: f.IO.In, Stdout: f.IO.Out, Stderr: f.IO.Err}
	in, inFile := f.IO.In.(*os.File)
	if inFile && f.IO.InTTY && f.IO.OutTTY && !f.Global.JSON {
		state, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer term.Restore(int(in.Fd()), state)
			xo.TTY, xo.Size = true, terminalSizes(ctx, in)
		}
	}
	code, err := e.Exec(ctx, xo)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// sizeQueue reports the terminal's size, then each change (SIGWINCH).
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

func terminalSizes(ctx context.Context, tty *os.File) remotecommand.TerminalSizeQueue {
	q := make(sizeQueue, 1)
	send := func() {
		if w, h, err := term.GetSize(int(tty.Fd())); err == nil {
			select {
			case q <- remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}:
			default:
			}
		}
	}
	send()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		defer close(q)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				send()
			}
		}
	}()
	return q
}
