// Package image builds the app's OCI image without a Docker daemon (Build:
// compile, assemble layers, attach an SBOM) and pushes it (Publish: auth,
// upload what is missing, tag last). The two are separate, so a prebuilt
// image can be published and a build can go to an OCI layout instead.
package image

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Source describes the tree an image is built from.
type Source struct {
	Revision string    // full commit SHA, or "unknown" outside git
	Dirty    bool      // uncommitted changes
	Time     time.Time // commit time: the image's created time, so builds are reproducible
	URL      string    // where the source lives (origin remote), for the OCI source label
}

// ShortRevision is the first 12 characters of the revision.
func (s Source) ShortRevision() string {
	if len(s.Revision) > 12 {
		return s.Revision[:12]
	}
	return s.Revision
}

// Version is the version string stamped into the binary.
func (s Source) Version() string {
	v := s.ShortRevision()
	if s.Dirty {
		v += "-dirty"
	}
	return v
}

// ReadSource reads git facts about dir. Outside a git checkout the revision
// is "unknown" and the time comes from SOURCE_DATE_EPOCH (or is the epoch).
func ReadSource(ctx context.Context, dir string, getenv func(string) string) Source {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	s := Source{Revision: "unknown", Time: time.Unix(0, 0).UTC()}
	if epoch := getenv("SOURCE_DATE_EPOCH"); epoch != "" {
		if n, err := strconv.ParseInt(epoch, 10, 64); err == nil {
			s.Time = time.Unix(n, 0).UTC()
		}
	}
	rev, err := git("rev-parse", "HEAD")
	if err != nil {
		return s
	}
	s.Revision = rev
	if ct, err := git("log", "-1", "--format=%ct"); err == nil && getenv("SOURCE_DATE_EPOCH") == "" {
		if n, err := strconv.ParseInt(ct, 10, 64); err == nil {
			s.Time = time.Unix(n, 0).UTC()
		}
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		s.Dirty = true
	}
	if u, err := git("remote", "get-url", "origin"); err == nil {
		s.URL = redactURL(u)
	}
	return s
}

// redactURL drops credentials from a remote URL.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.Index(u[i+3:], "@"); at >= 0 {
			return u[:i+3] + u[i+3+at+1:]
		}
	}
	return u
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
