package main

import (
	"context"

	"github.com/liftoff-dev/liftoff/internal/launch"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// appClient connects to the app of the stack (or of the flags).
func (f *Factory) appClient(ctx context.Context, flags ClusterFlags, command string) (*rollout.Client, launch.Site, error) {
	t, _, err := f.Site(ctx, flags)
	if err != nil {
		return nil, t, err
	}
	e, err := t.Client(launch.Deps{Printer: f.Printer(), Now: f.Now}, lock.Self("liftoff "+command, f.Getenv, f.Now()))
	return e, t, err
}
