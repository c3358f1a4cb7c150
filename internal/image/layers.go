package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// NonRoot is the user the image runs as (distroless' nonroot).
const NonRoot = 65532

// layerTime is every file's mtime: fixed, so a layer's digest depends only on
// its content (the commit time goes into the config, a tiny blob).
var layerTime = time.Unix(0, 0).UTC()

type file struct {
	path string
	mode int64
	body []byte
	dir  bool
	link string // a symlink to this target
}

// tarOf writes files as a tar with sorted entries, fixed times and root ownership.
func tarOf(files []file) []byte {
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: layerTime, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		tw.WriteHeader(h)
		tw.Write(f.body)
	}
	tw.Close()
	return buf.Bytes()
}

// caBundle is Mozilla's root store as pinned by golang.org/x/crypto, in PEM:
// the same on every machine, unlike the host's /etc/ssl.
func caBundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue // distrust-after constraints cannot be expressed in a PEM bundle
		}
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return b.Bytes()
}

// baseFiles is the scratch base: CA roots, users, an empty /tmp.
func baseFiles() []file {
	return []file{
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/ssl", mode: 0o755, dir: true},
		{path: "etc/ssl/certs", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, body: caBundle()},
		{path: "etc/passwd", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRoot, NonRoot))},
		{path: "etc/group", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", NonRoot))},
		{path: "tmp", mode: 0o1777, dir: true},
		{path: "home", mode: 0o755, dir: true},
		{path: "home/nonroot", mode: 0o700, dir: true},
	}
}

// layerCache keeps compressed layers on disk by the hash of their content
// (which is the layer's DiffID), with their digest and size beside them, so
// an unchanged binary costs neither compression nor a decompression to
// recompute the DiffID on the next build.
type layerCache struct{ dir string }

// cachedMeta is what is kept beside a cached layer.
type cachedMeta struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

func (c layerCache) layer(content []byte) (v1.Layer, error) {
	sum := sha256.Sum256(content)
	key := hex.EncodeToString(sum[:])
	diffID := v1.Hash{Algorithm: "sha256", Hex: key}
	path := filepath.Join(c.dir, key+".tar.gz")
	if c.dir != "" {
		if l, ok := c.cached(path, diffID); ok {
			return l, nil
		}
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil })
	if err != nil || c.dir == "" {
		return l, err
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return l, nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(c.dir, ".layer-*")
	if err != nil {
		return l, nil
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	tmp.Close()
	if err != nil {
		os.Remove(tmp.Name())
		return l, nil
	}
	meta, _ := json.Marshal(cachedMeta{Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)), Size: n})
	// The layer first, then its meta: a meta file always names a whole layer.
	if os.Rename(tmp.Name(), path) != nil || os.WriteFile(path+".json", meta, 0o644) != nil {
		return l, nil
	}
	if cl, ok := c.cached(path, diffID); ok {
		return cl, nil
	}
	return l, nil
}

// cached is the layer at path when it and its meta are both there.
func (c layerCache) cached(path string, diffID v1.Hash) (v1.Layer, bool) {
	b, err := os.ReadFile(path + ".json")
	if err != nil {
		return nil, false
	}
	var m cachedMeta
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	digest, err := v1.NewHash(m.Digest)
	if err != nil {
		return nil, false
	}
	if st, err := os.Stat(path); err != nil || st.Size() != m.Size {
		return nil, false
	}
	return &fileLayer{path: path, digest: digest, diffID: diffID, size: m.Size}, true
}

// fileLayer is a gzip-compressed layer in a file whose digests are known.
type fileLayer struct {
	path           string
	digest, diffID v1.Hash
	size           int64
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.DockerLayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}
