package main

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/stacks"
)

// targets is the registry the CLI serves: stacks.Targets unless a test
// gives its own.
func (f *Factory) targets() *target.Registry {
	if f.Targets != nil {
		return f.Targets
	}
	return stacks.Targets
}

// targetFlags are the target-specific flags of one command: every target's
// own, registered on the command once by name.
type targetFlags struct {
	fl     *pflag.FlagSet
	values map[string]func() []string
}

// registerTargetFlags adds every registered target's flags of command to fl.
func registerTargetFlags(reg *target.Registry, command string, fl *pflag.FlagSet) *targetFlags {
	return registerFlags(reg.Flags(command), func(fs target.Flag) string {
		return strings.Join(reg.FlagOwners(command, fs.Name), ", ") + " target: " + fs.Usage
	}, fl)
}

// registerFlags adds flags to fl, each with the help usage gives it.
func registerFlags(flags []target.Flag, usage func(target.Flag) string, fl *pflag.FlagSet) *targetFlags {
	tf := &targetFlags{fl: fl, values: map[string]func() []string{}}
	for _, fs := range flags {
		help := usage(fs)
		switch {
		case fs.Bool:
			v := fl.Bool(fs.Name, false, help)
			tf.values[fs.Name] = func() []string { return []string{strconv.FormatBool(*v)} }
		case fs.Repeatable:
			v := fl.StringArray(fs.Name, nil, help)
			tf.values[fs.Name] = func() []string { return *v }
		default:
			v := fl.String(fs.Name, "", help)
			tf.values[fs.Name] = func() []string { return []string{*v} }
		}
	}
	return tf
}

// Given are the values of the target flags the command was given (nil: none).
func (tf *targetFlags) Given() target.FlagValues {
	var out target.FlagValues
	for n, get := range tf.values {
		if tf.fl.Changed(n) {
			if out == nil {
				out = target.FlagValues{}
			}
			out[n] = get()
		}
	}
	return out
}

// checkTargetFlags refuses a given flag that tg does not read for command
// (a preview reads none: its parent's target was set up already).
func checkTargetFlags(reg *target.Registry, command string, given target.FlagValues, tg string, preview bool) error {
	names := make([]string, 0, len(given))
	for n := range given {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		owners := reg.FlagOwners(command, n)
		if preview || !slices.Contains(owners, tg) {
			kind := "a " + tg + " stack"
			if preview {
				kind = "a preview"
			}
			return failure.Newf(failure.Config, "drop --"+n, "--%s applies to %s stacks only (this is %s)", n, strings.Join(owners, ", "), kind)
		}
	}
	return nil
}

// targetCommands are the commands only one target needs, as CLI commands
// that parse their own arguments.
func targetCommands(f *Factory) []*cobra.Command {
	var out []*cobra.Command
	for _, t := range f.targets().All() {
		for _, c := range t.Commands() {
			cmd := &cobra.Command{Use: c.Name, Short: c.Short, Hidden: c.Hidden}
			flags := registerFlags(c.Flags, func(fs target.Flag) string { return fs.Usage }, cmd.Flags())
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				return c.Run(cmd.Context(), flags.Given(), args, target.CommandIO{Out: f.IO.Out, Now: f.Now, Getenv: f.Getenv})
			}
			out = append(out, cmd)
		}
	}
	return out
}

// targetSummaries describe the registered targets for help texts:
// "aws (VPC, EKS...), homelab (...)".
func targetSummaries(reg *target.Registry) string {
	var parts []string
	for _, t := range reg.All() {
		if s := t.Config().Summary; s != "" {
			parts = append(parts, t.Name()+" ("+s+")")
		} else {
			parts = append(parts, t.Name())
		}
	}
	return strings.Join(parts, "; ")
}

// targetPins are the versions every target pins, by what they version.
func targetPins(reg *target.Registry) map[string]string {
	pins := map[string]string{}
	for _, t := range reg.All() {
		for k, v := range t.Config().Pins {
			pins[k] = v
		}
	}
	return pins
}
