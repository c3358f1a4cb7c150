package launch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/image"
	"github.com/liftoff-dev/liftoff/internal/lock"
	"github.com/liftoff-dev/liftoff/internal/rollout"
)

// DeployOptions select what `deploy` does.
type DeployOptions struct {
	Site Site
	// Build says how to build when Rollout.Image is empty (and the live
	// image is not reused).
	Build BuildOptions
	// Rollout is what the rollout does, handed to it as is; the site fills
	// in where the app's settings and secrets are.
	Rollout rollout.DeployOptions
	// LockWait queues behind another deploy of the app; Self is this run
	// in the deploy lock.
	LockWait time.Duration
	Self     lock.Holder
	// Tune lets tests shorten the client's waits.
	Tune func(*rollout.Client)
	// Data, when the app has a stack, is its database: a backup is taken
	// before pending migrations run.
	Data *DB
}

// DeployResult is the summary of `deploy`.
type DeployResult struct {
	Site   Site            `json:"-"`
	Image  string          `json:"image"`
	Build  *BuildResult    `json:"build,omitempty"`
	Result *rollout.Result `json:"rollout"`
	Phases []PhaseResult   `json:"phases"`
}

// Deploy builds and pushes the image (unless given one), then rolls it out
// blue-green, over one connection to the cluster.
func Deploy(ctx context.Context, d Deps, o DeployOptions) (*DeployResult, error) {
	e, err := o.Site.Client(d, o.Self)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", o.Site.Namespace, err)
	}
	return deployWith(ctx, d, e, o)
}

// deployWith is Deploy over an open client.
func deployWith(ctx context.Context, d Deps, e *rollout.Client, o DeployOptions) (*DeployResult, error) {
	e.LockWait = o.LockWait
	if o.Tune != nil {
		o.Tune(e)
	}
	ro := o.Site.rolloutOptions(o.Rollout)
	if o.Data != nil && len(ro.Migrate) > 0 && ro.BeforeMigrate == nil {
		o.Data.client = e
		ro.BeforeMigrate = func(ctx context.Context, pending []rollout.Migration) (string, error) {
			b, err := Backup(ctx, d, o.Data, "", "before-migration")
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("liftoff db restore %s --stack %s", b.Name, o.Data.Config.Name), nil
		}
	}
	res := &DeployResult{Site: o.Site, Image: ro.Image}
	var phases []PhaseResult
	if ro.Image == "" && !ro.ReuseLive {
		br, err := buildAndPush(ctx, d, e, o.Site, o.Build)
		if br != nil {
			phases = append(phases, br.Phases...)
		}
		if err != nil {
			return nil, err
		}
		res.Build, res.Image, ro.Image = br, br.Reference, br.Reference
	}
	ph, err := runPhases(ctx, d, []phase{{"deploy", func(ctx context.Context) error {
		r, err := e.Deploy(ctx, ro)
		res.Result = r
		if r != nil && ro.ReuseLive {
			res.Image = r.Image
		}
		if err == nil && o.Data.inCluster() {
			// A login no session uses any more (the old slot's, after a
			// rotation) loses its password; a failure here is reported, the
			// deploy stands.
			login, _, rerr := databaseCredentials(ctx, e, o.Site.SecretName)
			var retired []string
			if rerr == nil {
				retired, rerr = retireLogins(ctx, e, login)
			}
			switch {
			case rerr != nil:
				d.Printer.Warnf("%v (the next up or deploy retries)", rerr)
			case len(retired) > 0:
				d.Printer.Infof("retired database logins (no login, no password left): %s", strings.Join(retired, ", "))
			}
		}
		return err
	}}})
	res.Phases = append(phases, ph...)
	return res, err
}

// buildAndPush builds the image and pushes it to the site's registry,
// through a port-forward when only the cluster's nodes can reach it. The
// reference returned is the one the nodes pull: registry@digest.
func buildAndPush(ctx context.Context, d Deps, e *rollout.Client, t Site, b BuildOptions) (*BuildResult, error) {
	b.Repository, b.Insecure = t.Registry, t.Insecure || b.Insecure
	if b.Repository == "" {
		return nil, failure.Newf(failure.Config, "pass --registry, set liftoff:registry, or deploy a prebuilt --image", "no registry to push to")
	}
	if len(b.Platforms) == 0 {
		b.Platforms = nodePlatforms(ctx, d, e)
	}
	if t.RegistryUsername != "" {
		b.Keychain = image.BasicKeychain{Username: t.RegistryUsername, Password: t.RegistryPassword}
	}
	if t.RegistryPortForward != "" {
		addr, stop, err := rollout.PortForward(ctx, e.Rest, t.RegistryPortForward)
		if err != nil {
			return nil, failure.New(failure.Registry, fmt.Errorf("reach the in-cluster registry: %w", err), "check that the registry pod runs: liftoff status")
		}
		defer stop()
		_, repo, _ := strings.Cut(t.Registry, "/")
		b.Repository, b.Insecure = addr+"/"+repo, true
	}
	br, err := Build(ctx, d, b)
	if err == nil && br.Reference != "" {
		br.Reference = t.Registry + "@" + br.Digest
	}
	return br, err
}

// nodePlatforms are the platforms of the cluster's nodes: what a deploy
// builds unless told otherwise (half the work of both on a one-arch
// cluster). When the nodes cannot be listed, it builds every default platform.
func nodePlatforms(ctx context.Context, d Deps, e *rollout.Client) []string {
	ps, err := e.NodePlatforms(ctx)
	if err == nil && len(ps) > 0 {
		return ps
	}
	d.Printer.Infof("building %s (the cluster's node platforms are unknown: %v)", strings.Join(image.DefaultPlatforms, ", "), err)
	return image.DefaultPlatforms
}
