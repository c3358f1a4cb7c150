package main

import (
	"github.com/spf13/cobra"
)

// allCommands lists every command of the tree.
func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		out = append(out, allCommands(sub)...)
	}
	return out
}

func findCmd(root *cobra.Command, path ...string) *cobra.Command {
	c, _, _ := root.Find(path)
	return c
}

// replaceRun rebuilds cmd with a run function that captures its options, the
// way each NewCmdX accepts runF, and swaps it into the tree.
func replaceRun(cmd *cobra.Command, f *Factory, capture func(any) error) {
	var fresh *cobra.Command
	switch cmd.CommandPath() {
	case "liftoff up":
		fresh = NewCmdUp(f, func(o *UpOptions) error { return capture(o) })
	case "liftoff destroy":
		fresh = NewCmdDestroy(f, func(o *DestroyOptions) error { return capture(o) })
	case "liftoff init":
		fresh = NewCmdInit(f, func(o *InitOptions) error { return capture(o) })
	case "liftoff preview":
		fresh = NewCmdPreview(f, func(o *PreviewOptions) error { return capture(o) })
	case "liftoff status":
		fresh = NewCmdStatus(f, func(o *StatusOptions) error { return capture(o) })
	case "liftoff cancel":
		fresh = NewCmdCancel(f, func(o *CancelOptions) error { return capture(o) })
	case "liftoff build":
		fresh = NewCmdBuild(f, func(o *BuildOptions) error { return capture(o) })
	case "liftoff deploy":
		fresh = NewCmdDeploy(f, func(o *DeployOptions) error { return capture(o) })
	case "liftoff rollback":
		fresh = NewCmdRollback(f, func(o *RolloutOptions) error { return capture(o) })
	case "liftoff promote":
		fresh = NewCmdPromote(f, func(o *RolloutOptions) error { return capture(o) })
	case "liftoff doctor":
		fresh = NewCmdDoctor(f, func(o *DoctorOptions) error { return capture(o) })
	case "liftoff stacks ls":
		fresh = NewCmdStacksLs(f, func(o *StacksLsOptions) error { return capture(o) })
	case "liftoff config set":
		fresh = NewCmdConfigSet(f, func(o *ConfigSetOptions) error { return capture(o) })
	case "liftoff config get":
		fresh = NewCmdConfigGet(f, func(o *ConfigGetOptions) error { return capture(o) })
	case "liftoff config rm":
		fresh = NewCmdConfigRm(f, func(o *ConfigRmOptions) error { return capture(o) })
	case "liftoff stacks gc":
		fresh = NewCmdStacksGC(f, func(o *StacksGCOptions) error { return capture(o) })
	case "liftoff kubeconfig":
		fresh = NewCmdKubeconfig(f, func(o *KubeconfigOptions) error { return capture(o) })
	case "liftoff logs":
		fresh = NewCmdLogs(f, func(o *LogsOptions) error { return capture(o) })
	case "liftoff exec":
		fresh = NewCmdExec(f, func(o *ExecOptions) error { return capture(o) })
	case "liftoff releases":
		fresh = NewCmdReleases(f, func(o *ReleasesOptions) error { return capture(o) })
	case "liftoff open":
		fresh = NewCmdOpen(f, func(o *OpenOptions) error { return capture(o) })
	case "liftoff secrets set":
		fresh = NewCmdSecretsSet(f, func(o *SecretsSetOptions) error { return capture(o) })
	case "liftoff secrets unset":
		fresh = NewCmdSecretsUnset(f, func(o *SecretsSetOptions) error { return capture(o) })
	case "liftoff secrets ls":
		fresh = NewCmdSecretsLs(f, func(o *SecretsLsOptions) error { return capture(o) })
	default:
		return
	}
	parent := cmd.Parent()
	parent.RemoveCommand(cmd)
	parent.AddCommand(fresh)
}
