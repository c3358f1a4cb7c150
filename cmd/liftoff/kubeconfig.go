package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/kubeconfig"
	"github.com/liftoff-dev/liftoff/internal/outputs"
)

// KubeconfigOptions are the flags of `liftoff kubeconfig`.
type KubeconfigOptions struct {
	f          *Factory
	Merge      bool
	SetCurrent bool
	// Path is the kubeconfig merged into (default $KUBECONFIG's first file or ~/.kube/config).
	Path string
}

// NewCmdKubeconfig prints the stack's kubeconfig, or merges it on request.
func NewCmdKubeconfig(f *Factory, runF func(*KubeconfigOptions) error) *cobra.Command {
	o := &KubeconfigOptions{f: f}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the stack's kubeconfig, or merge it into yours with --merge",
		Long: `kubeconfig prints the kubeconfig the stack recorded (homelab, aws) to stdout.
It contains credentials: redirect it to a file only you can read. --merge adds
its cluster, user and context (named after the stack) to your kubeconfig,
replacing entries of the same name and nothing else.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.SetCurrent && !o.Merge {
				return failure.Newf(failure.Config, "add --merge", "--set-current needs --merge")
			}
			if runF != nil {
				return runF(o)
			}
			return runKubeconfig(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Merge, "merge", false, "merge into your kubeconfig instead of printing")
	cmd.Flags().BoolVar(&o.SetCurrent, "set-current", false, "with --merge, also switch the current context to the stack's")
	cmd.Flags().StringVar(&o.Path, "kubeconfig", "", "kubeconfig file to merge into (default: $KUBECONFIG's first file, or ~/.kube/config)")
	return cmd
}

func runKubeconfig(ctx context.Context, o *KubeconfigOptions) error {
	f := o.f
	open, err := f.OpenStack(ctx)
	if err != nil {
		return err
	}
	cfg, outs := open.Config, open.Outputs
	doc, _ := outs[outputs.KubeconfigContent].Value.(string)
	if doc == "" {
		return failure.Newf(failure.NotFound, "run liftoff up first; a stack on a cluster you already have uses that cluster's own kubeconfig (liftoff config get)",
			"stack %s has no kubeconfig output", cfg.Name)
	}
	if !o.Merge {
		f.Printer().Result(strings.TrimRight(doc, "\n"), kubeconfigResult{Kubeconfig: doc})
		return nil
	}
	path := o.Path
	if list := filepath.SplitList(f.Getenv("KUBECONFIG")); path == "" && len(list) > 0 {
		path = list[0]
	}
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return err
		}
		path = filepath.Join(home, ".kube", "config")
	}
	added, err := kubeconfig.Merge(path, []byte(doc), o.SetCurrent)
	if err != nil {
		return err
	}
	f.Printer().Result("merged context "+strings.Join(added, ", ")+" into "+path, kubeconfigResult{Path: path, Contexts: added})
	return nil
}

// kubeconfigResult is the stack's kubeconfig, or where it was merged.
type kubeconfigResult struct {
	Kubeconfig string   `json:"kubeconfig,omitempty"`
	Path       string   `json:"path,omitempty"`
	Contexts   []string `json:"contexts,omitempty"`
}
