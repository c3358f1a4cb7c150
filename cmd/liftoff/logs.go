package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// LogsOptions are the flags of `liftoff logs`.
type LogsOptions struct {
	f       *Factory
	Cluster ClusterFlags
	Slot    string
	Follow  bool
	Since   time.Duration
	Tail    int
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
	o.Cluster.register(cmd.Flags())
	cmd.Flags().StringVar(&o.Slot, "slot", rollout.SlotLive, "pods of this slot: live, preview, blue, green or all")
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing new lines, from pods as they start, until Ctrl-C")
	cmd.Flags().DurationVar(&o.Since, "since", 0, "only lines newer than this, e.g. 10m")
	cmd.Flags().IntVar(&o.Tail, "tail", 100, "start with this many lines per pod (-1: all)")
	return cmd
}

func runLogs(ctx context.Context, o *LogsOptions) error {
	e, _, err := o.f.appClient(ctx, o.Cluster, "logs")
	if err != nil {
		return err
	}
	p := o.f.Printer()
	err = e.Logs(ctx, rollout.LogOptions{Slot: o.Slot, Follow: o.Follow, Since: o.Since, Tail: o.Tail}, func(l rollout.LogLine) error {
		p.AppLog(l.Time, fmt.Sprintf("%-5s %s | %s", l.Slot, l.Pod, l.Line), l)
		return nil
	})
	if o.Follow && ctx.Err() != nil {
		return nil // Ctrl-C ends a follow cleanly
	}
	return err
}
