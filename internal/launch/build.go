package launch

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/image"
	"github.com/liftoff-dev/liftoff/internal/ui"
)

// BuildOptions select what `build` makes and where it goes.
type BuildOptions struct {
	Dir       string
	Package   string
	Platforms []string
	BaseImage string
	// Repository to push to; empty builds only.
	Repository string
	// Insecure allows plain HTTP to a non-loopback registry.
	Insecure bool
	// OCILayout also writes the index to this directory.
	OCILayout string
	CacheDir  string
	Getenv    func(string) string
	// Keychain overrides the credential chain (tests).
	Keychain authn.Keychain
}

// BuildResult says what was built and where it landed.
type BuildResult struct {
	Digest        string        `json:"digest"`
	Reference     string        `json:"reference,omitempty"`
	Tags          []string      `json:"tags,omitempty"`
	Platforms     []string      `json:"platforms"`
	Revision      string        `json:"revision"`
	Dirty         bool          `json:"dirty"`
	BlobsUploaded int           `json:"blobs_uploaded"`
	BytesUploaded int64         `json:"bytes_uploaded"`
	Phases        []PhaseResult `json:"phases"`
}

// Build compiles and assembles the image, then pushes it when a repository is given.
func Build(ctx context.Context, d Deps, o BuildOptions) (*BuildResult, error) {
	host := ""
	if o.Repository != "" {
		repo, err := name.NewRepository(o.Repository)
		if err != nil {
			return nil, failure.Newf(failure.Config, "use a repository like ghcr.io/acme/shortener", "repository %q: %v", o.Repository, err)
		}
		host = repo.RegistryStr()
	}
	kc := o.Keychain
	if kc == nil {
		kc = image.Keychain(o.Getenv, host)
	}
	insecure := func(h string) bool { return image.IsLoopback(h) || (o.Insecure && h == host) }
	var res *image.Result
	out := &BuildResult{}
	phases := []phase{
		{"build", func(ctx context.Context) error {
			src := image.ReadSource(ctx, o.Dir, o.Getenv)
			if src.Dirty {
				d.Printer.Warnf("the tree has uncommitted changes: the image is tagged %s-dirty-<digest>", src.ShortRevision())
			}
			var err error
			res, err = image.Build(ctx, image.BuildOptions{Dir: o.Dir, Package: o.Package, Platforms: o.Platforms, BaseImage: o.BaseImage,
				CacheDir: o.CacheDir, Source: src, Keychain: kc, Insecure: insecure, Getenv: o.Getenv, Log: d.Printer.Infof})
			if err != nil {
				return fmt.Errorf("compile and assemble the image: %w", err)
			}
			out.Digest, out.Revision, out.Dirty = res.Digest.String(), src.Revision, src.Dirty
			for _, p := range res.Platforms {
				out.Platforms = append(out.Platforms, p.Platform.OS+"/"+p.Platform.Architecture)
			}
			if o.OCILayout != "" {
				if _, err := layout.Write(o.OCILayout, res.Index); err != nil {
					return fmt.Errorf("write OCI layout %s: %w", o.OCILayout, err)
				}
			}
			return nil
		}},
		{"push", func(ctx context.Context) error {
			if o.Repository == "" {
				return errSkipped
			}
			d.Printer.Waiting("upload to " + o.Repository)
			pub, err := image.Publish(ctx, res, image.PublishOptions{Repository: o.Repository, Tags: image.Tags(res.Source, res.Digest),
				Insecure: o.Insecure, Keychain: kc, Progress: func(done, total int64) { d.Printer.Progress("push "+o.Repository, done, total, "bytes") }})
			if err != nil {
				return fmt.Errorf("push to %s: %w", o.Repository, err)
			}
			out.Reference, out.Tags, out.BlobsUploaded, out.BytesUploaded = pub.Reference, pub.Tags, pub.BlobsUploaded, pub.BytesUploaded
			d.Printer.Infof("pushed %d blob(s), %s; %s", pub.BlobsUploaded, ui.Bytes(pub.BytesUploaded), pub.Reference)
			return nil
		}},
	}
	var err error
	out.Phases, err = runPhases(ctx, d, phases)
	return out, err
}
