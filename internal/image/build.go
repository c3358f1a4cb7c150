package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// DefaultPlatforms are built unless told otherwise.
var DefaultPlatforms = []string{"linux/amd64", "linux/arm64"}

// BinaryPath is where the app lives in the image.
const BinaryPath = "/app/server"

// CommandName is the name the binary also answers to on the image's PATH
// (/usr/local/bin/NAME): the main package's directory name.
func CommandName(pkg string) string {
	name := path.Base(strings.TrimSuffix(filepath.ToSlash(pkg), "/"))
	if name == "." || name == "/" || name == "" {
		return "app"
	}
	return name
}

// BuildOptions say what to build.
type BuildOptions struct {
	// Dir is where `go build` runs (the module holding Package).
	Dir string
	// Package is the Go main package, e.g. ./app/cmd/shortener.
	Package   string
	Platforms []string
	// BaseImage starts from a pulled image instead of the scratch base.
	BaseImage string
	// CacheDir keeps binaries and compressed layers between builds.
	CacheDir string
	Source   Source
	// Keychain and Insecure are used to pull BaseImage.
	Keychain authn.Keychain
	Insecure func(host string) bool
	// Log reports steps (one line each).
	Log func(format string, args ...any)
	// Getenv reads the environment for the go toolchain (GOCACHE, GOPROXY...).
	Getenv func(string) string
}

// Platform is one architecture's image and its SBOM.
type Platform struct {
	Platform v1.Platform
	Image    v1.Image
	SBOM     v1.Image
	Binary   int64 // binary size in bytes
}

// Result is a built multi-platform image.
type Result struct {
	Index     v1.ImageIndex
	Digest    v1.Hash
	Platforms []Platform
	Source    Source
}

// Build compiles the package for each platform and assembles an OCI index.
func Build(ctx context.Context, o BuildOptions) (*Result, error) {
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, failure.Newf(failure.Build, "install Go 1.26 (https://go.dev/dl) or deploy a prebuilt image with --image", "Go toolchain not found on PATH")
	}
	var base []file
	var baseImage v1.ImageIndex
	if o.BaseImage != "" {
		if baseImage, err = pullBase(ctx, o); err != nil {
			return nil, err
		}
	} else {
		base = baseFiles()
	}
	cache := layerCache{}
	if o.CacheDir != "" {
		cache.dir = filepath.Join(o.CacheDir, "layers")
	}
	res := &Result{Source: o.Source}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil || plat.OS != "linux" || plat.Architecture == "" {
			return nil, failure.Newf(failure.Config, "use linux/amd64 or linux/arm64", "platform %q is not os/arch for linux", p)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		o.Log("compiling %s for %s", o.Package, p)
		binPath, bin, err := compile(ctx, goBin, o, *plat)
		if err != nil || !bytes.HasPrefix(bin, []byte("\x7fELF")) {
			// Not a main package (go build then writes an archive), or not a
			// package at all: go list says which, with the fix.
			if cerr := checkMain(ctx, goBin, o); cerr != nil {
				return nil, cerr
			}
			if err == nil {
				err = failure.Newf(failure.Build, "pass the package that holds func main", "%s did not build into an executable", o.Package)
			}
			return nil, err
		}
		img, err := assemble(ctx, o, *plat, bin, base, baseImage, cache)
		if err != nil {
			return nil, err
		}
		doc, err := SBOM(binPath, bin, p, o.Source, o.Source.Time)
		if err != nil {
			return nil, failure.New(failure.Build, err, "")
		}
		digest, err := img.Digest()
		if err != nil {
			return nil, err
		}
		sbom, err := sbomArtifact(img, doc)
		if err != nil {
			return nil, err
		}
		res.Platforms = append(res.Platforms, Platform{Platform: *plat, Image: img, SBOM: sbom, Binary: int64(len(bin))})
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
		o.Log("%s: %s (binary %.1f MiB)", p, digest, float64(len(bin))/(1<<20))
	}
	res.Index = idx
	if res.Digest, err = idx.Digest(); err != nil {
		return nil, err
	}
	return res, nil
}

// checkMain fails early, with the fix, when Package is not a main package.
func checkMain(ctx context.Context, goBin string, o BuildOptions) error {
	cmd := exec.CommandContext(ctx, goBin, "list", "-f", "{{.Name}}", o.Package)
	cmd.Dir = o.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return failure.Newf(failure.Build, "pass --package with the path of a main package, relative to "+o.Dir,
			"package %s: %s", o.Package, firstLines(stderr.String(), 3))
	}
	if n := strings.TrimSpace(string(out)); n != "main" {
		return failure.Newf(failure.Build, "pass the package that holds func main, e.g. ./app/cmd/shortener",
			"package %s is package %s, not a main package", o.Package, n)
	}
	return nil
}

// compile builds a static, reproducible binary: no cgo, no paths, no VCS stamp
// (the revision goes in through -X instead), version and commit in ldflags.
func compile(ctx context.Context, goBin string, o BuildOptions, p v1.Platform) (string, []byte, error) {
	dir := filepath.Join(os.TempDir(), "liftoff-build")
	if o.CacheDir != "" {
		dir = filepath.Join(o.CacheDir, "bin")
	}
	out := filepath.Join(dir, strings.NewReplacer("/", "_", ".", "_").Replace(o.Package), p.OS+"_"+p.Architecture, path.Base(o.Package))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", nil, err
	}
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", o.Source.Version(), o.Source.Revision)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out, o.Package)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOFLAGS=")
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		return "", nil, failure.Newf(failure.Build, "fix the compile errors above, then rerun",
			"compile %s for %s/%s:\n%s", o.Package, p.OS, p.Architecture, firstLines(stderr.String(), 15))
	}
	bin, err := os.ReadFile(out)
	return out, bin, err
}

func assemble(ctx context.Context, o BuildOptions, p v1.Platform, bin []byte, base []file, baseIdx v1.ImageIndex, cache layerCache) (v1.Image, error) {
	var img v1.Image = empty.Image
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var cfg *v1.ConfigFile
	if baseIdx != nil {
		pulled, err := platformImage(baseIdx, p)
		if err != nil {
			return nil, err
		}
		img = pulled
		if cfg, err = img.ConfigFile(); err != nil {
			return nil, err
		}
		cfg = cfg.DeepCopy()
	} else {
		cfg = &v1.ConfigFile{}
		l, err := cache.layer(tarOf(base))
		if err != nil {
			return nil, err
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{CreatedBy: "liftoff: scratch base (CA roots, nonroot user)", Created: v1.Time{Time: layerTime}}}); err != nil {
			return nil, err
		}
		if cfg, err = img.ConfigFile(); err != nil {
			return nil, err
		}
		cfg = cfg.DeepCopy()
	}
	// The binary is also on PATH under its package's name, so one-off
	// commands read naturally: liftoff exec -- shortener migrate.
	appLayer, err := cache.layer(tarOf([]file{
		{path: "app", mode: 0o755, dir: true},
		{path: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, body: bin},
		{path: "usr", mode: 0o755, dir: true},
		{path: "usr/local", mode: 0o755, dir: true},
		{path: "usr/local/bin", mode: 0o755, dir: true},
		{path: "usr/local/bin/" + CommandName(o.Package), mode: 0o777, link: BinaryPath},
	}))
	if err != nil {
		return nil, err
	}
	if img, err = mutate.Append(img, mutate.Addendum{Layer: appLayer, MediaType: types.OCILayer,
		History: v1.History{CreatedBy: "liftoff: go build " + o.Package, Created: v1.Time{Time: o.Source.Time}}}); err != nil {
		return nil, err
	}
	withLayers, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg.RootFS, cfg.History = withLayers.RootFS, withLayers.History
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: o.Source.Time}
	cfg.Config.User = fmt.Sprintf("%d:%d", NonRoot, NonRoot)
	cfg.Config.Entrypoint = []string{BinaryPath}
	cfg.Config.Cmd = nil
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = setEnv(cfg.Config.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
	cfg.Config.Env = setEnv(cfg.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin")
	cfg.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	labels := map[string]string{}
	for k, v := range cfg.Config.Labels {
		labels[k] = v
	}
	labels["org.opencontainers.image.revision"] = o.Source.Revision
	labels["org.opencontainers.image.version"] = o.Source.Version()
	labels["org.opencontainers.image.created"] = o.Source.Time.Format("2006-01-02T15:04:05Z")
	labels["org.opencontainers.image.title"] = path.Base(o.Package)
	if o.Source.URL != "" {
		labels["org.opencontainers.image.source"] = o.Source.URL
	}
	if o.BaseImage != "" {
		labels["org.opencontainers.image.base.name"] = o.BaseImage
	}
	cfg.Config.Labels = labels
	return mutate.ConfigFile(img, cfg)
}

func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	out := []string{}
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, kv)
}

// sbomArtifact wraps an SPDX document as an OCI artifact whose subject is img.
func sbomArtifact(img v1.Image, doc []byte) (v1.Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	size, err := img.Size()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	art := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	art = mutate.ConfigMediaType(art, types.MediaType(SBOMMediaType))
	art, err = mutate.Append(art, mutate.Addendum{Layer: static.NewLayer(doc, types.MediaType(SBOMMediaType))})
	if err != nil {
		return nil, err
	}
	return mutate.Subject(art, v1.Descriptor{MediaType: mt, Digest: digest, Size: size}).(v1.Image), nil
}

func pullBase(ctx context.Context, o BuildOptions) (v1.ImageIndex, error) {
	var opts []name.Option
	ref, err := name.ParseReference(o.BaseImage)
	if err == nil && o.Insecure != nil && o.Insecure(ref.Context().RegistryStr()) {
		opts = append(opts, name.Insecure)
		ref, err = name.ParseReference(o.BaseImage, opts...)
	}
	if err != nil {
		return nil, failure.Newf(failure.Config, "pass --base-image like gcr.io/distroless/static:nonroot", "--base-image %q: %v", o.BaseImage, err)
	}
	o.Log("pulling base image %s", ref)
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc))
	if err != nil {
		return nil, classifyRemote(err, ref.Context().RegistryStr())
	}
	if desc.MediaType.IsIndex() {
		return desc.ImageIndex()
	}
	// A single-platform base: index it under its own platform.
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: cf.Platform()}}), nil
}

func platformImage(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture {
			return idx.Image(d.Digest)
		}
	}
	return nil, failure.Newf(failure.Build, "choose a base image published for every --platform", "base image has no %s/%s variant", p.OS, p.Architecture)
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}
