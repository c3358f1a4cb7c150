// Package failure classifies errors into the failure classes liftoff reports,
// each with its own exit code and an optional one-line fix for the user.
package failure

import (
	"context"
	"errors"
	"fmt"
)

// Class is a kind of failure. Its exit code is part of liftoff's public interface.
type Class int

// The classes, in exit-code order. Keep README's exit-code table in step.
const (
	Internal    Class = iota // a bug or an unclassified failure
	Config                   // bad flags or stack config; nothing was changed
	Auth                     // credentials or passphrase missing or rejected
	Locked                   // another run holds the stack or deploy lock
	Engine                   // the Pulumi engine failed to apply a change
	Health                   // the new release never became healthy, or a smoke test failed
	Build                    // compiling or assembling the image failed
	Registry                 // the registry was unreachable or refused the push
	NotFound                 // a stack, release or resource that must exist does not
	Interrupted              // the user or CI interrupted the run
)

var names = [...]string{"internal", "config", "auth", "locked", "engine", "health", "build", "registry", "not_found", "interrupted"}

var codes = [...]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 130}

func (c Class) String() string { return names[c] }

// ExitCode is the process exit code for the class.
func (c Class) ExitCode() int { return codes[c] }

// Classes lists every class, for documentation and tests.
func Classes() []Class {
	out := make([]Class, len(names))
	for i := range out {
		out[i] = Class(i)
	}
	return out
}

// Error carries a class and a fix along with the cause.
type Error struct {
	Class Class
	Err   error
	Fix   string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New classifies err. A nil err stays nil.
func New(class Class, err error, fix string) error {
	if err == nil {
		return nil
	}
	return &Error{Class: class, Err: err, Fix: fix}
}

// Newf builds a classified error from a format string.
func Newf(class Class, fix, format string, args ...any) error {
	return &Error{Class: class, Err: fmt.Errorf(format, args...), Fix: fix}
}

// ClassOf finds the class of err: the outermost classified error wins, and an
// unclassified context cancellation counts as an interruption.
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Internal
}

// FixOf returns the fix attached to the outermost classified error, if any.
func FixOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fix
	}
	return ""
}
