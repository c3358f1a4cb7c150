package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blang/semver"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// PulumiVersion is the pulumi CLI version liftoff installs and is tested with.
const PulumiVersion = "3.259.0"

// FindCLI looks for the pulumi CLI: $LIFTOFF_PULUMI, then ~/.liftoff/bin, then PATH.
func FindCLI(home string, getenv func(string) string) (string, error) {
	if p := getenv("LIFTOFF_PULUMI"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", failure.New(failure.Config, fmt.Errorf("LIFTOFF_PULUMI=%s: %w", p, err), "point LIFTOFF_PULUMI at a pulumi binary, or unset it")
		}
		return p, nil
	}
	if p := filepath.Join(home, "bin", "pulumi"); isExecutable(p) {
		return p, nil
	}
	if p, err := exec.LookPath("pulumi"); err == nil {
		return p, nil
	}
	return "", failure.Newf(failure.Config,
		"run liftoff again on a connected machine to install v"+PulumiVersion+" into ~/.liftoff/bin, or build it offline with make tools",
		"pulumi CLI not found (looked at $LIFTOFF_PULUMI, %s, PATH)", filepath.Join(home, "bin", "pulumi"))
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// minimumCLI is the oldest pulumi CLI liftoff drives: the Automation API
// changes the flags it passes at 3.130.
var minimumCLI = semver.MustParse("3.130.0")

// cliCommand runs the pulumi CLI as the Automation API's own command does
// (non-interactive, PULUMI_AUTOMATION_API set, the CLI's directory first on
// PATH, SIGINT when the context ends), without starting the CLI once more
// on every liftoff command to ask its version: that is cached per binary
// (path, size, modification time) in liftoff's home. With a log (--verbose)
// each call's duration is written there.
type cliCommand struct {
	path    string
	version semver.Version
	log     io.Writer
	// exists, when set, reports a stack whose checkpoint is on disk: its
	// `stack select` is answered here (see Run).
	exists func(stack string) bool
}

func (c *cliCommand) Version() semver.Version { return c.version }

func (c *cliCommand) Run(ctx context.Context, workdir string, stdin io.Reader, stdout, stderr []io.Writer, env []string, args ...string) (string, string, int, error) {
	name := args[:min(2, len(args))] // for the log: "stack output"
	// Opening a stack runs `pulumi stack select`, 0.2 s of a 3 s up with
	// nothing to do, only to record the current stack in the workspace's
	// settings. Every later command the Automation API runs names the stack
	// with --stack, so a stack whose checkpoint is on disk needs none of it.
	// Any other select (a missing stack, a cloud backend) runs as usual.
	if len(args) == 4 && args[0] == "stack" && args[1] == "select" && args[2] == "--stack" && c.exists != nil && c.exists(args[3]) {
		if c.log != nil {
			fmt.Fprintf(c.log, "pulumi stack select: answered from the checkpoint on disk\n")
		}
		return "", "", 0, nil
	}
	post, _ := ctx.Value(postUpKey{}).(*postUp)
	if post != nil && post.upDone && len(args) >= 3 && args[0] == "stack" && (args[1] == "output" || args[1] == "history") && args[2] == "--json" {
		// The reads the Automation API makes after every up: Stack.Up reads
		// the outputs from the checkpoint and the changes from the run's
		// own summary event instead (see postUp), and ignores these answers.
		if c.log != nil {
			fmt.Fprintf(c.log, "pulumi %s: read by liftoff from the checkpoint and the run's events\n", strings.Join(name, " "))
		}
		post.answered = true
		if args[1] == "output" {
			return "{}", "", 0, nil
		}
		return "[]", "", 0, nil
	}
	if !slices.Contains(args, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir = workdir
	cmd.Env = withPathFirst(append(append(os.Environ(), env...), "PULUMI_AUTOMATION_API=true"), filepath.Dir(c.path))
	var out, errOut bytes.Buffer
	cmd.Stdout = io.MultiWriter(append(stdout, &out)...)
	cmd.Stderr = io.MultiWriter(append(stderr, &errOut)...)
	cmd.Stdin = stdin
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			_ = cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	if c.log != nil {
		fmt.Fprintf(c.log, "pulumi %s: %s\n", strings.Join(name, " "), time.Since(start).Round(time.Millisecond))
	}
	if post != nil && err == nil && len(name) > 0 && name[0] == "up" {
		post.upDone = true
	}
	code := -2 // the Automation API's "unknown"
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err == nil:
		code = 0
	}
	return out.String(), errOut.String(), code, err
}

// withPathFirst puts dir first on env's PATH.
func withPathFirst(env []string, dir string) []string {
	for i, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			if v != "" {
				dir += string(os.PathListSeparator) + v
			}
			env[i] = "PATH=" + dir
			return env
		}
	}
	return append(env, "PATH="+dir)
}

// commandAt wraps the CLI at path, reading its version from cacheDir when
// that binary was asked before.
func commandAt(path, cacheDir string, log io.Writer) (*cliCommand, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	type entry struct {
		Path    string `json:"path"`
		Size    int64  `json:"size"`
		ModTime int64  `json:"mod_time"`
		Version string `json:"version"`
	}
	want := entry{Path: abs, Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	cache := filepath.Join(cacheDir, "pulumi-version.json")
	var got entry
	if b, err := os.ReadFile(cache); err == nil && json.Unmarshal(b, &got) == nil && got.Path == want.Path && got.Size == want.Size && got.ModTime == want.ModTime {
		want.Version = got.Version
	} else {
		cmd := exec.Command(abs, "version")
		cmd.Env = append(os.Environ(), "PULUMI_SKIP_UPDATE_CHECK=true")
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("pulumi version: %w", err)
		}
		want.Version = strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	}
	v, err := semver.ParseTolerant(want.Version)
	if err != nil {
		return nil, fmt.Errorf("pulumi version %q: %w", want.Version, err)
	}
	if v.LT(minimumCLI) {
		return nil, fmt.Errorf("version %s is older than %s, the oldest liftoff drives", v, minimumCLI)
	}
	if got.Version != want.Version {
		if b, err := json.Marshal(want); err == nil && os.MkdirAll(cacheDir, 0o700) == nil {
			_ = os.WriteFile(cache, b, 0o600) // a cache: without it the next run asks again
		}
	}
	return &cliCommand{path: abs, version: v, log: log}, nil
}
