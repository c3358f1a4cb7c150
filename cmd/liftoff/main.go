// Command liftoff takes a product from "works on my laptop" to live,
// observable and safely deployable: it stands up a stack with Pulumi, builds
// the app's image without a Docker daemon and rolls it out blue-green.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = ""
)

func main() {
	streams := ui.System(os.Getenv)
	ctx, stop := interrupts(context.Background(), streams)
	code := run(ctx, os.Args[1:], &Factory{IO: streams, Getenv: os.Getenv, Now: time.Now})
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, f *Factory) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var code exitError
	if errors.As(err, &code) { // liftoff exec: the command's own exit code
		f.Printer().Close()
		return int(code)
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") ||
		strings.HasPrefix(err.Error(), "unknown shorthand flag") {
		err = failure.New(failure.Config, err, "see liftoff --help")
	}
	if ctx.Err() != nil && failure.ClassOf(err) != failure.Interrupted {
		err = failure.New(failure.Interrupted, err, "rerun the command: liftoff recovers where it stopped")
	}
	f.Printer().Error(err)
	f.Printer().Close()
	return failure.ClassOf(err).ExitCode()
}

// interrupts cancels ctx on the first SIGINT or SIGTERM so work stops at a safe
// point; a second one exits at once.
func interrupts(parent context.Context, streams *ui.Streams) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-ch; !ok {
			return
		}
		streams.Err.Write([]byte("\ninterrupting: stopping at the next safe point (press Ctrl-C again to abort now)\n"))
		cancel(errors.New("interrupted"))
		if _, ok := <-ch; !ok {
			return
		}
		streams.Err.Write([]byte("aborted\n"))
		os.Exit(failure.Interrupted.ExitCode())
	}()
	return ctx, func() { signal.Stop(ch); close(ch); cancel(nil) }
}
