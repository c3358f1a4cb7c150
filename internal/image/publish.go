package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// PublishOptions say where an image goes.
type PublishOptions struct {
	// Repository, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shortener or 127.0.0.1:5000/app.
	Repository string
	// Tags to point at the index once everything is uploaded.
	Tags []string
	// Insecure allows plain HTTP to a registry that is not on loopback.
	Insecure bool
	Keychain authn.Keychain
	// Progress is told bytes uploaded so far and in all.
	Progress func(done, total int64)
	// Transport is the HTTP transport (tests count requests through it).
	Transport http.RoundTripper
}

// Published is where an image landed.
type Published struct {
	// Reference is repo@sha256:..., what deploys use.
	Reference string   `json:"reference"`
	Digest    string   `json:"digest"`
	Tags      []string `json:"tags"`
	// BlobsUploaded and BytesUploaded count what actually crossed the wire:
	// blobs the registry already had are skipped.
	BlobsUploaded int   `json:"blobs_uploaded"`
	BytesUploaded int64 `json:"bytes_uploaded"`
}

// Tags returns the tags for a source: the short commit, with -dirty and the
// content digest for a dirty tree (registries with immutable tags refuse to
// move a tag, and two dirty builds differ).
func Tags(src Source, digest v1.Hash) []string {
	if src.Revision == "unknown" {
		return []string{"build-" + digest.Hex[:12]}
	}
	if src.Dirty {
		return []string{src.ShortRevision() + "-dirty-" + digest.Hex[:8]}
	}
	return []string{src.ShortRevision()}
}

// IsLoopback reports whether a registry host is on this machine.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Publish uploads the index, its images and their SBOMs, by digest, and
// tags the index last: a push that fails midway leaves no tag behind.
func Publish(ctx context.Context, res *Result, o PublishOptions) (*Published, error) {
	repo, err := name.NewRepository(o.Repository)
	if err != nil {
		return nil, failure.Newf(failure.Config, "use a repository like ghcr.io/acme/shortener or 127.0.0.1:5000/app", "repository %q: %v", o.Repository, err)
	}
	host := repo.RegistryStr()
	if o.Insecure || IsLoopback(host) {
		if repo, err = name.NewRepository(o.Repository, name.Insecure); err != nil {
			return nil, err
		}
	}
	counter := &countingTransport{next: o.Transport}
	if counter.next == nil {
		counter.next = remote.DefaultTransport
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(counter), remote.WithJobs(4)}
	var progress chan v1.Update
	var wg sync.WaitGroup
	if o.Progress != nil {
		progress = make(chan v1.Update, 16)
		opts = append(opts, remote.WithProgress(progress))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range progress {
				o.Progress(u.Complete, u.Total)
			}
		}()
	}
	byDigest := repo.Digest(res.Digest.String())
	err = remote.WriteIndex(byDigest, res.Index, opts...)
	wg.Wait() // remote closes the progress channel when the write ends
	if err != nil {
		return nil, classifyRemote(err, host)
	}
	sbomOpts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(counter)}
	for _, p := range res.Platforms {
		d, err := p.SBOM.Digest()
		if err != nil {
			return nil, err
		}
		if err := remote.Write(repo.Digest(d.String()), p.SBOM, sbomOpts...); err != nil {
			return nil, classifyRemote(fmt.Errorf("attach SBOM: %w", err), host)
		}
	}
	pub := &Published{Reference: byDigest.String(), Digest: res.Digest.String(), Tags: o.Tags,
		BlobsUploaded: int(counter.blobs.Load()), BytesUploaded: counter.bytes.Load()}
	for _, t := range o.Tags {
		tag := repo.Tag(t)
		if d, err := remote.Head(tag, sbomOpts...); err == nil && d.Digest == res.Digest {
			continue // already there: immutable-tag registries refuse even an identical re-tag
		}
		if err := remote.Tag(tag, res.Index, sbomOpts...); err != nil {
			return nil, classifyRemote(fmt.Errorf("tag %s: %w", t, err), host)
		}
	}
	return pub, nil
}

// countingTransport counts blob uploads and the bytes they carry.
type countingTransport struct {
	next  http.RoundTripper
	blobs atomic.Int64
	bytes atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	upload := strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut)
	if upload && r.Body != nil {
		r.Body = &countingBody{ReadCloser: r.Body, n: &c.bytes}
	}
	resp, err := c.next.RoundTrip(r)
	if err == nil && upload && r.Method == http.MethodPut && resp.StatusCode == http.StatusCreated {
		c.blobs.Add(1)
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// classifyRemote turns registry errors into auth or registry failures with a fix.
func classifyRemote(err error, host string) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return failure.New(failure.Auth, fmt.Errorf("registry %s refused the credentials: %w", host, err),
				"log in (docker login "+host+"), set LIFTOFF_REGISTRY_USERNAME and LIFTOFF_REGISTRY_PASSWORD, or check the IAM policy for ECR")
		}
		return failure.New(failure.Registry, fmt.Errorf("registry %s: %w", host, err), "check the repository name and that the registry accepts pushes")
	}
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.Is(err, io.ErrUnexpectedEOF) {
		return failure.New(failure.Registry, fmt.Errorf("cannot reach registry %s: %w", host, err),
			"check the address and that the registry runs; for plain HTTP outside loopback pass --insecure-registry")
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return failure.New(failure.Registry, fmt.Errorf("registry %s: %w", host, err), "")
}
