// Package ui owns the terminal: it is the only writer to stdout and stderr.
// People get a live progress view (or plain lines and heartbeats in CI logs),
// machines get versioned NDJSON events with --json.
package ui

import (
	"bytes"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// Streams are the process's standard streams and what is known about them.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	Err    io.Writer
	InTTY  bool
	OutTTY bool
	ErrTTY bool
	// CI is true when the CI environment variable says so; it forces
	// non-interactive behaviour even on a pseudo-terminal.
	CI bool
}

// System returns the real standard streams.
func System(getenv func(string) string) *Streams {
	return &Streams{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
		CI:     isTruthy(getenv("CI")),
	}
}

// Test returns streams backed by buffers, none of them a terminal.
func Test() (s *Streams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &Streams{In: in, Out: out, Err: errOut}, in, out, errOut
}

// CanPrompt reports whether liftoff may ask the user a question.
func (s *Streams) CanPrompt() bool { return s.InTTY && s.OutTTY && !s.CI }

func isTruthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
