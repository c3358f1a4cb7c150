package main

import (
	"github.com/spf13/cobra"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "liftoff",
		Short: "From works-on-my-laptop to live, observable and safely deployable",
		Long: `liftoff stands up a stack with Pulumi, builds the app's image without a
Docker daemon, and rolls it out blue-green.

Targets: ` + targetSummaries(f.targets()) + `.

Results go to stdout, progress to stderr; --json writes NDJSON events to stdout.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	g := &f.Global
	pf := root.PersistentFlags()
	pf.StringVarP(&g.Stack, "stack", "s", "", "stack name (env LIFTOFF_STACK; default: the project's only stack)")
	pf.StringVar(&g.Cwd, "cwd", "", "project directory holding Pulumi.yaml (default: current directory)")
	pf.BoolVar(&g.JSON, "json", false, "write NDJSON events to stdout (schema: docs/events.md)")
	pf.BoolVarP(&g.Yes, "yes", "y", false, "confirm without prompting (required when not interactive)")
	pf.BoolVarP(&g.Verbose, "verbose", "v", false, "show unchanged resources, debug lines and the engine's own output")
	pf.StringVar(&g.Backend, "backend", "", "state backend URL, e.g. s3://bucket (env LIFTOFF_BACKEND; default file://~/.liftoff/state)")
	pf.StringVar(&g.SecretsProvider, "secrets-provider", "", "secrets provider for new stacks, e.g. awskms://alias/liftoff (default passphrase)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return failure.New(failure.Config, err, "see "+cmd.CommandPath()+" --help")
	})

	root.AddCommand(
		NewCmdInit(f, nil),
		NewCmdConfig(f),
		NewCmdPreview(f, nil),
		NewCmdUp(f, nil),
		NewCmdDestroy(f, nil),
		NewCmdBuild(f, nil),
		NewCmdDeploy(f, nil),
		NewCmdPromote(f, nil),
		NewCmdRollback(f, nil),
		NewCmdStatus(f, nil),
		NewCmdLogs(f, nil),
		NewCmdExec(f, nil),
		NewCmdSecrets(f),
		NewCmdDB(f),
		NewCmdReleases(f, nil),
		NewCmdOpen(f, nil),
		NewCmdMirror(f),
		NewCmdStacks(f),
		NewCmdCancel(f, nil),
		NewCmdDoctor(f, nil),
		NewCmdVersion(f),
		NewCmdKubeconfig(f, nil),
	)
	root.AddCommand(targetCommands(f)...)
	root.CompletionOptions.HiddenDefaultCmd = false
	return root
}
