package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// ReleasesOptions are the flags of `liftoff releases`.
type ReleasesOptions struct {
	f       *Factory
	Cluster ClusterFlags
	N       int
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
	o.Cluster.register(cmd.Flags())
	cmd.Flags().IntVarP(&o.N, "number", "n", 20, "show this many records")
	return cmd
}

func runReleases(ctx context.Context, o *ReleasesOptions) error {
	e, t, err := o.f.appClient(ctx, o.Cluster, "releases")
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
	o.f.Printer().Result(releasesTable(hist), releasesResult{App: t.App, Namespace: t.Namespace, Releases: hist})
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
		if r.Bake != "" {
			fmt.Fprintf(&b, "  bake %s\n", r.Bake)
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

// releasesResult is an app's deploy history, newest first.
type releasesResult struct {
	App       string           `json:"app"`
	Namespace string           `json:"namespace"`
	Releases  []rollout.Record `json:"releases"`
}
