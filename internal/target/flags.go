package target

import (
	"context"
	"io"
	"strconv"
	"time"
)

// Commands a target's flags belong to.
const (
	CommandInit = "init"
	CommandUp   = "up"
)

// Flag is a command-line flag only one target reads; the CLI registers the
// flags of every target on the command and hands a target the values of
// its own (a flag of another target is refused by name).
type Flag struct {
	// Command is CommandInit or CommandUp.
	Command string
	Name    string
	Usage   string
	// Repeatable flags collect every value; Bool flags take none.
	Repeatable bool
	Bool       bool
}

// FlagValues are the values of a target's flags a run was given, by name.
type FlagValues map[string][]string

// Get is a flag's last value ("" when not given).
func (v FlagValues) Get(name string) string {
	if vs := v[name]; len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return ""
}

// All are every value of a repeatable flag.
func (v FlagValues) All(name string) []string { return v[name] }

// Bool is a boolean flag's value.
func (v FlagValues) Bool(name string) bool {
	b, _ := strconv.ParseBool(v.Get(name))
	return b
}

// Command is a command only one target needs, such as a credential helper
// its kubeconfig calls. The CLI registers its flags (their Command field is
// ignored) and hands it their values and its arguments.
type Command struct {
	Name  string
	Short string
	// Hidden keeps it out of help: programs call it, people do not.
	Hidden bool
	Flags  []Flag
	Run    func(ctx context.Context, flags FlagValues, args []string, io CommandIO) error
}

// CommandIO is what a target's command may use.
type CommandIO struct {
	Out    io.Writer
	Now    func() time.Time
	Getenv func(string) string
}
