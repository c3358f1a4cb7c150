package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/launch"
)

// NewCmdConfig groups the stack config commands.
func NewCmdConfig(f *Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read and change the stack's settings (docs/config.md)",
	}
	cmd.AddCommand(NewCmdConfigSet(f, nil), NewCmdConfigGet(f, nil), NewCmdConfigRm(f, nil))
	return cmd
}

// ConfigSetOptions are the flags of `liftoff config set`.
type ConfigSetOptions struct {
	f      *Factory
	Key    string
	Value  string
	HasVal bool
	Secret bool
	Path   bool
}

// NewCmdConfigSet validates and stores one setting.
func NewCmdConfigSet(f *Factory, runF func(*ConfigSetOptions) error) *cobra.Command {
	o := &ConfigSetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "set KEY [VALUE]",
		Short: "Validate and store one setting; secrets are encrypted",
		Long: `Validate and store one setting. KEY is a liftoff setting (replicas, or
liftoff:replicas) or another provider's key (aws:profile). Without VALUE the
value is read from stdin (or asked for without echo on a terminal), which keeps
secrets out of shell history. Nothing is stored if the value is invalid.`,
		Example: `  liftoff config set replicas 3
  liftoff config set --secret databaseUrl < db-url.txt
  liftoff config set --path 'nodes[1].role' agent`,
		Args: rangeArgs(1, 2, "KEY [VALUE]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Key = args[0]
			if len(args) == 2 {
				o.Value, o.HasVal = args[1], true
			}
			if runF != nil {
				return runF(o)
			}
			return runConfigSet(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Secret, "secret", false, "encrypt the value (required for secret settings)")
	cmd.Flags().BoolVar(&o.Path, "path", false, "KEY is a property path into a list or object, e.g. nodes[0].host")
	return cmd
}

func runConfigSet(ctx context.Context, o *ConfigSetOptions) error {
	f := o.f
	stack, err := f.StackName()
	if err != nil {
		return err
	}
	res, err := launch.SetConfig(ctx, launch.SetConfigOptions{Dir: f.Dir(), Stack: stack, Key: o.Key, Secret: o.Secret, Path: o.Path, Engine: f.Engine,
		Value: func(key string) (string, error) {
			if o.HasVal {
				return o.Value, nil
			}
			return readValue(f, key, o.Secret)
		}})
	if err != nil {
		return err
	}
	f.Printer().Result(fmt.Sprintf("%s = %s (stack %s)", config.ShortName(res.Key), res.Shown, res.Stack), res)
	return nil
}

// readValue reads a value from a no-echo prompt on a terminal, or all of stdin.
func readValue(f *Factory, key string, secret bool) (string, error) {
	if f.Interactive() {
		fmt.Fprintf(f.IO.Err, "value for %s: ", key)
		if file, ok := f.IO.In.(*os.File); ok && secret {
			b, err := term.ReadPassword(int(file.Fd()))
			fmt.Fprintln(f.IO.Err)
			return string(b), err
		}
	}
	b, err := io.ReadAll(io.LimitReader(f.IO.In, 1<<20))
	if err != nil {
		return "", err
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return "", failure.Newf(failure.Config, "pass VALUE, or pipe it on stdin", "no value for %s", key)
	}
	return v, nil
}

// ConfigGetOptions are the flags of `liftoff config get`.
type ConfigGetOptions struct {
	f           *Factory
	Key         string
	ShowSecrets bool
}

// NewCmdConfigGet prints settings, secrets masked unless asked.
func NewCmdConfigGet(f *Factory, runF func(*ConfigGetOptions) error) *cobra.Command {
	o := &ConfigGetOptions{f: f}
	cmd := &cobra.Command{
		Use:   "get [KEY]",
		Short: "Print one setting, or all of them (secrets masked)",
		Args:  rangeArgs(0, 1, "[KEY]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Key = args[0]
			}
			if runF != nil {
				return runF(o)
			}
			return runConfigGet(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.ShowSecrets, "show-secrets", false, "decrypt and print secret values")
	return cmd
}

func runConfigGet(ctx context.Context, o *ConfigGetOptions) error {
	f := o.f
	stack, err := f.StackName()
	if err != nil {
		return err
	}
	vals, err := config.ReadStackFile(f.Dir(), stack)
	if err != nil {
		return failure.New(failure.NotFound, err, "run liftoff init --stack "+stack)
	}
	var plain map[string]string
	if o.ShowSecrets {
		eng, err := f.Engine(ctx)
		if err != nil {
			return err
		}
		st, err := eng.Stack(ctx, stack, nil, false)
		if err != nil {
			return err
		}
		all, err := st.AllConfig(ctx)
		if err != nil {
			return err
		}
		plain = map[string]string{}
		for k, v := range all {
			plain[k] = v.Value
		}
	}
	show := func(k string, v config.Value) string {
		if v.Secret {
			if s, ok := plain[k]; ok {
				return s
			}
			return "[secret]"
		}
		return v.Text
	}
	if o.Key != "" {
		key := config.FullName(o.Key)
		v, ok := vals[key]
		if !ok {
			def, known := config.Lookup(key)
			if !known {
				return failure.Newf(failure.NotFound, "list settings with liftoff config get", "%s is not set on stack %s", o.Key, stack)
			}
			f.Printer().Result(def.Default, configValue{Key: key, Value: def.Default, Default: true})
			return nil
		}
		f.Printer().Result(show(key, v), configValue{Key: key, Value: show(key, v), Secret: v.Secret})
		return nil
	}
	var b strings.Builder
	all := configListing{Stack: stack, Config: map[string]configValue{}}
	for _, k := range sortedKeys(vals) {
		fmt.Fprintf(&b, "%-28s %s\n", config.ShortName(k), show(k, vals[k]))
		all.Config[k] = configValue{Value: show(k, vals[k]), Secret: vals[k].Secret}
	}
	f.Printer().Result(b.String(), all)
	return nil
}

// ConfigRmOptions are the flags of `liftoff config rm`.
type ConfigRmOptions struct {
	f    *Factory
	Key  string
	Path bool
}

// NewCmdConfigRm removes one setting.
func NewCmdConfigRm(f *Factory, runF func(*ConfigRmOptions) error) *cobra.Command {
	o := &ConfigRmOptions{f: f}
	cmd := &cobra.Command{
		Use:   "rm KEY",
		Short: "Remove one setting (it returns to its default)",
		Args:  exactArgs(1, "KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Key = args[0]
			if runF != nil {
				return runF(o)
			}
			return runConfigRm(cmd.Context(), o)
		},
	}
	cmd.Flags().BoolVar(&o.Path, "path", false, "KEY is a property path, e.g. nodes[2]")
	return cmd
}

func runConfigRm(ctx context.Context, o *ConfigRmOptions) error {
	f := o.f
	stack, err := f.StackName()
	if err != nil {
		return err
	}
	key := config.FullName(o.Key)
	if key == "liftoff:target" {
		return failure.Newf(failure.Config, "create another stack with liftoff init instead", "the target of a stack cannot be removed")
	}
	eng, err := f.Engine(ctx)
	if err != nil {
		return err
	}
	st, err := eng.Stack(ctx, stack, nil, false)
	if err != nil {
		return err
	}
	if err := st.RemoveConfig(ctx, key, o.Path); err != nil {
		return err
	}
	if vals, err := config.ReadStackFile(f.Dir(), stack); err == nil {
		if _, err := config.Parse(stack, vals); err != nil {
			f.Printer().Warnf("the stack's config is now incomplete: %v", err)
		}
	}
	f.Printer().Result(fmt.Sprintf("removed %s from stack %s", config.ShortName(key), stack), configValue{Stack: stack, Key: key})
	return nil
}

// configValue is one setting as `config get` and `config rm` report it
// (a secret's value masked unless asked).
type configValue struct {
	Stack   string `json:"stack,omitempty"`
	Key     string `json:"key,omitempty"`
	Value   string `json:"value,omitempty"`
	Secret  bool   `json:"secret,omitempty"`
	Default bool   `json:"default,omitempty"`
}

// configListing is every setting of a stack, by full key.
type configListing struct {
	Stack  string                 `json:"stack"`
	Config map[string]configValue `json:"config"`
}
