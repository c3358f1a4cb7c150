package rollout

import (
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// Image is a parsed image reference.
type Image struct {
	Ref        string
	Repository string
	Digest     string
	Tag        string
}

var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)

// ParseImage reads repo@sha256:..., or repo:tag (allowed, but discouraged:
// a tag can move under a running slot).
func ParseImage(ref string) (Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return Image{}, failure.Newf(failure.Config, "pass --image repo@sha256:... (liftoff build prints it)", "image %q: %v", ref, err)
	}
	// go-containerregistry lets through path components the registries
	// refuse (empty, upper case): checked here, by the distribution grammar.
	for _, c := range strings.Split(r.Context().RepositoryStr(), "/") {
		if !pathComponent.MatchString(c) {
			return Image{}, failure.Newf(failure.Config, "pass --image repo@sha256:... (liftoff build prints it)",
				"image %q: repository path component %q must be lower-case letters and digits, separated by '.', '_', '__' or '-'", ref, c)
		}
	}
	img := Image{Ref: ref, Repository: r.Context().Name()}
	switch v := r.(type) {
	case name.Digest:
		img.Digest = v.DigestStr()
	case name.Tag:
		img.Tag = v.TagStr()
	}
	return img, nil
}
