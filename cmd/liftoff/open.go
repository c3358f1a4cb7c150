package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/outputs"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// OpenOptions are the flags of `liftoff open`.
type OpenOptions struct {
	f       *Factory
	Cluster ClusterFlags
	What    string
	Print   bool
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
	o.Cluster.register(cmd.Flags())
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
	e, t, err := f.appClient(ctx, o.Cluster, "open")
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
	f.Printer().Result(text, openResult{What: o.What, URL: url, PortForward: forward})
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

// openResult is where `liftoff open` reached what it opened.
type openResult struct {
	What        string `json:"what"`
	URL         string `json:"url"`
	PortForward string `json:"port_forward"`
}
