package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/liftoff-dev/liftoff/internal/failure"
	"github.com/liftoff-dev/liftoff/internal/testenv"
)

var (
	sharedOnce sync.Once
	shared     *Result
	sharedErr  error
	sharedSrc  Source
	// sharedCache is the shared build's layer cache.
	sharedCache string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedCache != "" {
		os.RemoveAll(sharedCache)
	}
	os.Exit(code)
}

// sharedBuild builds the shortener once for the tests that only read it.
func sharedBuild(t *testing.T) *Result {
	t.Helper()
	sharedOnce.Do(func() {
		sharedSrc = Source{Revision: "0123456789abcdef0123456789abcdef01234567", Time: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), URL: "https://github.com/liftoff-dev/liftoff"}
		// The layer cache outlives the first test that builds; TestMain removes it.
		cache, err := os.MkdirTemp("", "liftoff-image-test")
		if err != nil {
			sharedErr = err
			return
		}
		sharedCache = cache
		shared, sharedErr = Build(context.Background(), BuildOptions{Dir: testenv.RepoRoot(t), Package: "./app/cmd/shortener",
			CacheDir: cache, Source: sharedSrc})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestBuildPushPull(t *testing.T) {
	res := sharedBuild(t)
	reg := testenv.StartRegistry(t)
	repo := reg.Host + "/shortener"
	var lastDone, lastTotal int64
	pub, err := Publish(context.Background(), res, PublishOptions{Repository: repo, Tags: Tags(sharedSrc, res.Digest),
		Progress: func(d, tot int64) { lastDone, lastTotal = d, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if pub.Reference != repo+"@"+res.Digest.String() || pub.BlobsUploaded == 0 || pub.BytesUploaded < 1<<20 || lastDone != lastTotal || lastTotal == 0 {
		t.Fatalf("published %+v, progress %d/%d", pub, lastDone, lastTotal)
	}

	// Pull back by tag and check everything a runtime and an auditor read.
	tagged, _ := name.ParseReference(repo + ":" + sharedSrc.ShortRevision())
	idx, err := remote.Index(tagged)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d != res.Digest {
		t.Fatalf("tag points at %s, want %s", d, res.Digest)
	}
	m, _ := idx.IndexManifest()
	plats := map[string]bool{}
	for _, desc := range m.Manifests {
		plats[desc.Platform.OS+"/"+desc.Platform.Architecture] = true
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		c := cf.Config
		if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != BinaryPath || cf.Architecture != desc.Platform.Architecture {
			t.Errorf("%s config: user %q entrypoint %v arch %s", desc.Platform.Architecture, c.User, c.Entrypoint, cf.Architecture)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.revision": sharedSrc.Revision, "org.opencontainers.image.source": sharedSrc.URL,
			"org.opencontainers.image.created": "2026-11-01T12:00:00Z", "org.opencontainers.image.version": "0123456789ab",
		} {
			if c.Labels[k] != want {
				t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
			}
		}
		if !cf.Created.Time.Equal(sharedSrc.Time) {
			t.Errorf("created %v", cf.Created)
		}
		// The SBOM is attached as a referrer of the platform image.
		refs, err := remote.Referrers(tagged.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rm, _ := refs.IndexManifest()
		if len(rm.Manifests) != 1 || rm.Manifests[0].ArtifactType != SBOMMediaType {
			t.Fatalf("%s referrers: %+v", desc.Platform.Architecture, rm.Manifests)
		}
		sbomImg, err := remote.Image(tagged.Context().Digest(rm.Manifests[0].Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := sbomImg.Layers()
		rc, _ := layers[0].Uncompressed()
		var doc spdx
		json.NewDecoder(rc).Decode(&doc)
		rc.Close()
		names := map[string]string{}
		for _, p := range doc.Packages {
			names[p.Name] = p.VersionInfo
		}
		if doc.SPDXVersion != "SPDX-2.3" || names["github.com/jackc/pgx/v5"] != "v5.12.0" || names["stdlib"] == "" || !strings.Contains(doc.Name, desc.Platform.Architecture) {
			t.Errorf("SBOM: %s %v", doc.Name, names)
		}
	}
	if !plats["linux/amd64"] || !plats["linux/arm64"] {
		t.Errorf("platforms: %v", plats)
	}

	// A second push of the unchanged image uploads no blob at all.
	reg.Requests()
	again, err := Publish(context.Background(), res, PublishOptions{Repository: repo, Tags: Tags(sharedSrc, res.Digest)})
	if err != nil {
		t.Fatal(err)
	}
	reqs := reg.Requests()
	if again.BlobsUploaded != 0 || again.BytesUploaded != 0 || testenv.Count(reqs, "/blobs/uploads/") != 0 {
		t.Errorf("second push uploaded %d blobs (%d bytes); requests: %v", again.BlobsUploaded, again.BytesUploaded, reqs)
	}
	if testenv.Count(reqs, "PUT", "/manifests/"+sharedSrc.ShortRevision()) != 0 {
		t.Error("an identical tag was written again")
	}
}

// TestReproducible builds two clean checkouts of the same commit, in
// different directories with separate layer caches: same digest.
func TestReproducible(t *testing.T) {
	root := testenv.RepoRoot(t)
	var digests []v1.Hash
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("checkout-%d", i))
		os.MkdirAll(dir, 0o755)
		for _, p := range []string{"go.mod", "go.sum", "app"} {
			if out, err := exec.Command("cp", "-a", filepath.Join(root, p), dir).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
		}
		gitCommit(t, dir)
		src := ReadSource(context.Background(), dir, func(string) string { return "" })
		if src.Dirty || src.Revision == "unknown" {
			t.Fatalf("source: %+v", src)
		}
		res, err := Build(context.Background(), BuildOptions{Dir: dir, Package: "./app/cmd/shortener", Platforms: []string{"linux/amd64"}, CacheDir: t.TempDir(), Source: src})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, res.Digest)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of one commit: %s and %s", digests[0], digests[1])
	}
}

func gitCommit(t *testing.T, dir string) {
	t.Helper()
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-qm", "fixture"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
			"GIT_AUTHOR_DATE=2026-11-01T12:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T12:00:00Z")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
}

// TestRunImage extracts the amd64 root filesystem and starts the entrypoint
// in it (chrooted, as the image's user, when running as root), against a real
// PostgreSQL: /health answers 200.
func TestRunImage(t *testing.T) {
	res := sharedBuild(t)
	var img v1.Image
	for _, p := range res.Platforms {
		if p.Platform.Architecture == "amd64" {
			img = p.Image
		}
	}
	rootfs := t.TempDir()
	os.Chmod(rootfs, 0o755)
	os.Chmod(filepath.Dir(rootfs), 0o755)
	if err := untar(mutate.Extract(img), rootfs); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "app/server"} {
		if _, err := os.Stat(filepath.Join(rootfs, p)); err != nil {
			t.Fatalf("rootfs lacks %s", p)
		}
	}
	pg := testenv.StartPostgres(t)
	port := testenv.FreePort(t)
	cf, _ := img.ConfigFile()
	cmd := exec.Command(filepath.Join(rootfs, "app/server"))
	if os.Getuid() == 0 {
		cmd = exec.Command(cf.Config.Entrypoint[0])
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: rootfs, Credential: &syscall.Credential{Uid: NonRoot, Gid: NonRoot}}
		cmd.Dir = "/"
	}
	cmd.Env = append(cf.Config.Env, "DATABASE_URL="+pg.URL, fmt.Sprintf("LISTEN_ADDR=127.0.0.1:%d", port))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err == nil {
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("health: %d", res.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("image never served /health: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), `"version":"0123456789ab"`) {
		t.Errorf("version not stamped: %s", out)
	}
}

func untar(rc io.ReadCloser, dir string) error {
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			mode := os.FileMode(h.Mode & 0o777)
			if h.Mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
			os.MkdirAll(p, 0o755)
			os.Chmod(p, mode)
			os.Lchown(p, h.Uid, h.Gid)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode))
			if err != nil {
				return err
			}
			io.Copy(f, tr)
			f.Close()
		}
	}
}

func TestBuildErrors(t *testing.T) {
	root := testenv.RepoRoot(t)
	cache := t.TempDir() // compiled output goes here, not to /tmp/liftoff-build
	_, err := Build(context.Background(), BuildOptions{Dir: root, Package: "./internal/config", Platforms: []string{"linux/amd64"}, CacheDir: cache})
	if failure.ClassOf(err) != failure.Build || !strings.Contains(err.Error(), "not a main package") {
		t.Errorf("library package: %v", err)
	}
	_, err = Build(context.Background(), BuildOptions{Dir: root, Package: "./no/such/pkg", Platforms: []string{"linux/amd64"}, CacheDir: cache})
	if failure.ClassOf(err) != failure.Build || failure.FixOf(err) == "" {
		t.Errorf("missing package: %v", err)
	}
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "go.mod"), []byte("module broken\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(broken, "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644)
	_, err = Build(context.Background(), BuildOptions{Dir: broken, Package: ".", Platforms: []string{"linux/amd64"}, CacheDir: cache})
	if failure.ClassOf(err) != failure.Build || !strings.Contains(err.Error(), "undefinedThing") {
		t.Errorf("compile error: %v", err)
	}
	_, err = Build(context.Background(), BuildOptions{Dir: broken, Package: ".", Platforms: []string{"windows"}, CacheDir: cache})
	if failure.ClassOf(err) != failure.Config {
		t.Errorf("bad platform: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = Build(context.Background(), BuildOptions{Dir: broken, Package: ".", CacheDir: cache})
	if failure.ClassOf(err) != failure.Build || !strings.Contains(failure.FixOf(err), "install Go") {
		t.Errorf("no toolchain: %v", err)
	}
}

func TestPublishErrors(t *testing.T) {
	res := sharedBuild(t)
	_, err := Publish(context.Background(), res, PublishOptions{Repository: "127.0.0.1:1/app"})
	if failure.ClassOf(err) != failure.Registry || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("unreachable: %v", err)
	}
	_, err = Publish(context.Background(), res, PublishOptions{Repository: "Not A Repo"})
	if failure.ClassOf(err) != failure.Config {
		t.Errorf("bad repository: %v", err)
	}

	reg := testenv.StartRegistry(t)
	reg.Username, reg.Password = "lab", "s3cret"
	_, err = Publish(context.Background(), res, PublishOptions{Repository: reg.Host + "/app", Keychain: authn.NewMultiKeychain()})
	if failure.ClassOf(err) != failure.Auth {
		t.Errorf("no credentials: class %v: %v", failure.ClassOf(err), err)
	}
	kc := Keychain(func(k string) string {
		return map[string]string{"LIFTOFF_REGISTRY_USERNAME": "lab", "LIFTOFF_REGISTRY_PASSWORD": "s3cret"}[k]
	}, reg.Host)
	if _, err := Publish(context.Background(), res, PublishOptions{Repository: reg.Host + "/app", Keychain: kc, Tags: []string{"v1"}}); err != nil {
		t.Fatalf("basic auth: %v", err)
	}

	// A push that fails before the end leaves no tag.
	reg2 := testenv.StartRegistry(t)
	reg2.Fail = func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256:") && r.Header.Get("Content-Type") == "application/vnd.oci.image.index.v1+json"
	}
	_, err = Publish(context.Background(), res, PublishOptions{Repository: reg2.Host + "/app", Tags: []string{"half"}})
	if failure.ClassOf(err) != failure.Registry {
		t.Fatalf("injected failure: %v", err)
	}
	tag, _ := name.ParseReference(reg2.Host + "/app:half")
	if _, err := remote.Head(tag); err == nil {
		t.Error("a failed push left its tag")
	}
}

type fakeECR struct {
	calls  int
	region string
}

func (f *fakeECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, _ ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.calls++
	tok := base64.StdEncoding.EncodeToString([]byte("AWS:token-for-" + f.region))
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{AuthorizationToken: aws.String(tok), ExpiresAt: aws.Time(time.Now().Add(12 * time.Hour))}}}, nil
}

func TestECRKeychain(t *testing.T) {
	fake := &fakeECR{}
	k := &ECRKeychain{Client: func(ctx context.Context, region string) (ECRTokens, error) { fake.region = region; return fake, nil }}
	for range 3 {
		reg, _ := name.NewRegistry("123456789012.dkr.ecr.eu-west-1.amazonaws.com")
		a, err := k.Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := a.Authorization()
		if cfg.Username != "AWS" || cfg.Password != "token-for-eu-west-1" {
			t.Fatalf("auth: %+v", cfg)
		}
	}
	if fake.calls != 1 {
		t.Errorf("token fetched %d times, want 1 (cached)", fake.calls)
	}
	other, _ := name.NewRegistry("ghcr.io")
	if a, _ := k.Resolve(other); a != authn.Anonymous {
		t.Error("ECR keychain answered for ghcr.io")
	}
	failing := &ECRKeychain{Client: func(context.Context, string) (ECRTokens, error) { return nil, errors.New("no credentials") }}
	reg, _ := name.NewRegistry("123456789012.dkr.ecr.us-east-1.amazonaws.com")
	if _, err := failing.Resolve(reg); err == nil || !strings.Contains(err.Error(), "ECR credentials") {
		t.Errorf("failing ECR: %v", err)
	}
}

func TestTagsAndLoopback(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	if got := Tags(Source{Revision: strings.Repeat("1", 40)}, h); got[0] != "111111111111" {
		t.Errorf("clean: %v", got)
	}
	if got := Tags(Source{Revision: strings.Repeat("1", 40), Dirty: true}, h); got[0] != "111111111111-dirty-abababab" {
		t.Errorf("dirty: %v", got)
	}
	for host, want := range map[string]bool{"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "registry.lan:5000": false, "10.0.0.5:5000": false} {
		if IsLoopback(host) != want {
			t.Errorf("%s loopback = %v", host, !want)
		}
	}
}

// TestLayerCache: a cached layer is the same layer (digest, DiffID, bytes)
// without being compressed or decompressed again, and a cached file cut
// short is not used.
func TestLayerCache(t *testing.T) {
	c := layerCache{dir: t.TempDir()}
	content := tarOf([]file{{path: "app/server", mode: 0o755, body: bytes.Repeat([]byte("liftoff "), 1<<16)}})
	first, err := c.layer(content)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.layer(content)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := second.(*fileLayer); !ok {
		t.Fatalf("second layer is a %T, not the cached file", second)
	}
	fresh, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil })
	for _, l := range []v1.Layer{first, second} {
		d, _ := l.Digest()
		want, _ := fresh.Digest()
		id, _ := l.DiffID()
		wantID, _ := fresh.DiffID()
		if d != want || id != wantID {
			t.Errorf("layer %T: digest %s diffID %s, want %s %s", l, d, id, want, wantID)
		}
	}
	rc, err := second.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, content) {
		t.Error("cached layer's content differs")
	}
	d, _ := second.Digest()
	path := filepath.Join(c.dir, d.Hex)
	matches, _ := filepath.Glob(filepath.Join(c.dir, "*.tar.gz"))
	if len(matches) != 1 {
		t.Fatalf("cache holds %v (%s)", matches, path)
	}
	if err := os.Truncate(matches[0], 10); err != nil {
		t.Fatal(err)
	}
	third, err := c.layer(content)
	if err != nil {
		t.Fatal(err)
	}
	if d3, _ := third.Digest(); d3 != d {
		t.Errorf("after a cut-short cache file: digest %s, want %s", d3, d)
	}
}
