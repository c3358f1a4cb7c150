package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/tools/remotecommand"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// appClient connects to the app of the stack (or of the flags).
func (f *Factory) appClient(ctx context.Context, flags ClusterFlags, command string) (*rollout.Client, launch.Site, error) {
	t, _, err := f.Site(ctx, flags)
	if err != nil {
		return nil, t, err
	}
	e, err := t.Client(launch.Deps{Printer: f.Printer(), Now: f.Now}, lock.Self("liftoff "+command, f.Getenv, f.Now()))
	return e, t, err
}

// LogsOptions are the flags of `liftoff logs`.
type LogsOptions struct {
	f      *Factory
	Target ClusterFlags
	Slot   string
	Follow bool
	Since  time.Duration
	Tail   int
}

// NewCmdLogs prints the app's log lines, merged across the slot's pods.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	o := &LogsOptions{f: f}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print the app's logs: every pod of a slot, merged in time order (-f follows, across deploys)",
		Long: `Logs prints the lines of every pod of a slot, each prefixed by its slot and pod,
merged in time order. With -f it keeps following, picking up pods as they start;
following the live slot, a deploy's new slot appears once traffic flips to it.
Ctrl-C ends it. With --json each line is an app_log event carrying the app's own
JSON log fields.`,
		Example: `  liftoff logs
  liftoff logs -f
  liftoff logs --slot all --since 10m
  liftoff logs --json --tail 20 | jq .data.fields.msg`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rollout.ValidSlotSelector(o.Slot, true); err != nil {
				return err
			}
			if runF != nil {
				return runF(o)
			}
			return runLogs(cmd.Context(), o)
		},
	}
	o.Target.register(cmd.Flags())
	cmd.Flags().StringVar(&o.Slot, "slot", rollout.SlotLive, "pods of this slot: live, preview, blue, green or all")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines, from pods as they start, until Ctrl-C")
	cmd.Flags().DurationVar(&o.Since, "since", 0, "only lines newer than this, e.g. 10m")
	cmd.Flags().IntVar(&o.Tail, "tail", 100, "start with this many lines per pod (-1: all)")
	return cmd
}

func runLogs(ctx context.Context, o *LogsOptions) error {
	e, _, err := o.f.appClient(ctx, o.Target, "logs")
	if err != nil {
		return err
	}
	p := o.f.Printer()
	err = e.Logs(ctx, rollout.LogOptions{Slot: o.Slot, Follow: o.Follow, Since: o.Since, Tail: o.Tail}, func(l rollout.LogLine) error {
		data := map[string]any{"slot": l.Slot, "pod": l.Pod, "container": l.Container, "line": l.Line}
		if l.Fields != nil {
			data["fields"] = l.Fields
		}
		p.AppLog(l.Time, fmt.Sprintf("%-5s %s | %s", l.Slot, l.Pod, l.Line), data)
		return nil
	})
	if o.Follow && ctx.Err() != nil {
		return nil // Ctrl-C ends a follow cleanly
	}
	return err
}

// ExecOptions are the flags of `liftoff exec`.
type ExecOptions struct {
	f       *Factory
	Target  ClusterFlags
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
	o.Target.register(cmd.Flags())
	cmd.Flags().StringVar(&o.Slot, "slot", rollout.SlotLive, "run in a pod of this slot: live, preview, blue or green")
	cmd.Flags().StringVar(&o.Pod, "pod", "", "run in this pod of the app")
	return cmd
}

func runExec(ctx context.Context, o *ExecOptions) error {
	f := o.f
	e, _, err := f.appClient(ctx, o.Target, "exec")
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

// ReleasesOptions are the flags of `liftoff releases`.
type ReleasesOptions struct {
	f      *Factory
	Target ClusterFlags
	N      int
}

// NewCmdReleases prints the app's deploy history.
func NewCmdReleases(f *Factory, runF func(*ReleasesOptions) error) *cobra.Command {
	o := &ReleasesOptions{f: f}
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "Show the deploy history: deploys, promotions, rollbacks and secrets changes, newest first",
		Long: `Releases lists what happened to the app, newest first: time, action (deploy,
promote, rollback, secrets), slot, Helm revision, image digest, secrets version,
who (user@host or the CI run), result and duration. The history is kept in the
cluster (ConfigMap <app>-releases, last 100), so every machine sees the same one.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.N < 1 {
				return failure.Newf(failure.Config, "pass -n 1 or more", "-n %d: nothing to show", o.N)
			}
			if runF != nil {
				return runF(o)
			}
			return runReleases(cmd.Context(), o)
		},
	}
	o.Target.register(cmd.Flags())
	cmd.Flags().IntVarP(&o.N, "number", "n", 20, "show this many records")
	return cmd
}

func runReleases(ctx context.Context, o *ReleasesOptions) error {
	e, t, err := o.f.appClient(ctx, o.Target, "releases")
	if err != nil {
		return err
	}
	hist, err := e.History(ctx, o.N)
	if err != nil {
		return err
	}
	if len(hist) == 0 {
		return failure.Newf(failure.NotFound, "deploy the app first: liftoff up (or liftoff deploy)", "%s has never been deployed in namespace %s", t.App, t.Namespace)
	}
	o.f.Printer().Result(releasesTable(hist), map[string]any{"app": t.App, "namespace": t.Namespace, "releases": hist})
	return nil
}

func releasesTable(hist []rollout.Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-19s  %-8s  %-5s  %3s  %-12s  %-10s  %-24s  %-12s  %s\n", "TIME", "ACTION", "SLOT", "REV", "DIGEST", "SECRETS", "WHO", "RESULT", "DURATION")
	for _, r := range hist {
		fmt.Fprintf(&b, "%-19s  %-8s  %-5s  %3s  %-12s  %-10s  %-24s  %-12s  %s\n", r.Time.Local().Format(time.DateTime), r.Action, orDash(r.Slot),
			revision(r.Revision), shortDigest(r.Digest), orDash(r.Secrets), r.Who, r.Result, (time.Duration(r.DurationMS) * time.Millisecond).Round(100*time.Millisecond))
		if r.Error != "" {
			fmt.Fprintf(&b, "  %s\n", r.Error)
		}
	}
	return b.String()
}

func revision(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return orDash(d)
}

// OpenOptions are the flags of `liftoff open`.
type OpenOptions struct {
	f      *Factory
	Target ClusterFlags
	What   string
	Print  bool
}

var openable = append([]string{"app"}, outputs.Dashboards...)

// NewCmdOpen reaches the app or a dashboard through a port-forward it holds.
func NewCmdOpen(f *Factory, runF func(*OpenOptions) error) *cobra.Command {
	o := &OpenOptions{f: f, What: "app"}
	cmd := &cobra.Command{
		Use:   "open [app|grafana|prometheus|alertmanager]",
		Short: "Open the app or a dashboard: its public URL, or a port-forward liftoff holds until Ctrl-C",
		Long: `Open reaches the app (its live Service) or a dashboard. When the stack has a
public URL for it, that is printed (and opened in a browser when interactive).
Otherwise liftoff forwards a free loopback port to it through the API server,
prints the local URL, opens it when interactive, and holds the forward until
Ctrl-C. --print only prints, never starts a browser.`,
		Example: `  liftoff open
  liftoff open grafana
  liftoff open prometheus --print`,
		Args: rangeArgs(0, 1, "["+strings.Join(openable, "|")+"]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.What = args[0]
			}
			if !contains(openable, o.What) {
				return failure.Newf(failure.Config, "liftoff open "+strings.Join(openable, "|"), "%q is not something liftoff opens", o.What)
			}
			if runF != nil {
				return runF(o)
			}
			return runOpen(cmd.Context(), o)
		},
	}
	o.Target.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.Print, "print", false, "only print the URL; do not start a browser")
	return cmd
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func runOpen(ctx context.Context, o *OpenOptions) error {
	f := o.f
	e, t, err := f.appClient(ctx, o.Target, "open")
	if err != nil {
		return err
	}
	var forward, url, scheme = "", "", "http"
	switch o.What {
	case "app":
		if t.URL != "" {
			url = t.URL
			break
		}
		live, err := e.Status(ctx)
		if err != nil {
			return err
		}
		if live.Live == "" {
			return failure.Newf(failure.NotFound, "deploy the app first: liftoff up (or liftoff deploy)", "%s has never been deployed in namespace %s", t.App, t.Namespace)
		}
		forward = fmt.Sprintf("%s/%s:%d", t.Namespace, e.StableService(), rollout.ServicePort)
	default:
		open, err := f.OpenStack(ctx)
		if err != nil {
			return err
		}
		addr := open.Outputs.String(o.What)
		host, port, ok := strings.Cut(addr, ":")
		parts := strings.Split(host, ".")
		if !ok || len(parts) < 2 {
			return failure.Newf(failure.NotFound, "turn observability on: liftoff config set observability true, then liftoff up",
				"the stack has no %s (observability is off, or the stack was never brought up)", o.What)
		}
		forward = parts[1] + "/" + parts[0] + ":" + port
	}
	if forward != "" {
		addr, stop, err := rollout.PortForward(ctx, e.Rest, forward)
		if err != nil {
			return failure.New(failure.Health, fmt.Errorf("forward to %s: %w", forward, err), "check the pods with liftoff status")
		}
		defer stop()
		url = scheme + "://" + addr + "/"
	}
	text := fmt.Sprintf("%s: %s", o.What, url)
	if forward != "" {
		text += fmt.Sprintf("\n(forwarding to %s until Ctrl-C)", forward)
	}
	f.Printer().Result(text, map[string]any{"what": o.What, "url": url, "port_forward": forward})
	if !o.Print && f.Interactive() {
		if err := browse(url); err != nil {
			f.Printer().Warnf("could not start a browser (%v): open %s yourself", err, url)
		}
	}
	if forward == "" {
		return nil
	}
	<-ctx.Done()
	return nil
}

// browse opens url in the desktop's browser.
func browse(url string) error {
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return errors.New(name + " not found")
	}
	return exec.Command(path, url).Start()
}
