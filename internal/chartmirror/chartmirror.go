// Package chartmirror fills a Helm repository folder with pinned charts,
// copied from their public repositories or from another mirror, each
// checked against its repository's digest: the folder, served over HTTP as
// it is, is a chart mirror (liftoff:chartMirror) for a cluster that cannot
// reach the public repositories.
package chartmirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"
)

// Chart is a chart at a pinned version in its public repository.
type Chart struct {
	Name, Version, Repo string
}

func (c Chart) file() string { return c.Name + "-" + c.Version + ".tgz" }

// Result is what became of one chart.
type Result struct {
	Chart   string `json:"chart"`
	Version string `json:"version"`
	// Source is the repository it was read from ("" when it was present).
	Source string `json:"source,omitempty"`
	File   string `json:"file,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Status is "fetched", "present" (already in the folder, unchanged),
	// "missing" (the source lacks it; only with AllowMissing) or "failed".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Options change where the charts come from.
type Options struct {
	// From is one repository every chart is read from instead of its own:
	// an http(s) URL (its index.yaml there) or a folder holding index.yaml.
	From string
	// AllowMissing reports a chart the source does not hold instead of
	// failing; a source that cannot be read still fails.
	AllowMissing bool
	// Client fetches over HTTP (default: one with a 10 s connect budget).
	Client *http.Client
	// Done, when set, is called as each chart is settled.
	Done func(Result)
}

// Error is a failed mirror: which charts, and whether a source could not be
// reached at all (Unreachable) or lacked them (NotFound).
type Error struct {
	Failed      []Result
	Unreachable bool
}

// Error names each cause once, with the charts it stopped.
func (e *Error) Error() string {
	var causes []string
	charts := map[string][]string{}
	for _, r := range e.Failed {
		if charts[r.Error] == nil {
			causes = append(causes, r.Error)
		}
		charts[r.Error] = append(charts[r.Error], r.Chart+" "+r.Version)
	}
	var parts []string
	for _, c := range causes {
		parts = append(parts, strings.Join(charts[c], ", ")+": "+c)
	}
	return fmt.Sprintf("%d chart(s) not mirrored: %s", len(e.Failed), strings.Join(parts, "; "))
}

// Mirror puts every chart into dir (created when missing) and writes its
// index.yaml with relative URLs. A chart whose file is already there with
// the digest dir's index records is left alone without reading any source,
// so a second run does not touch the network. A fetched file must match its
// source's digest and hold the chart it names; a file that does not is
// never put in dir. Charts that can be mirrored are, even when others fail;
// a run that fetched nothing into a new dir leaves no dir behind.
func Mirror(ctx context.Context, dir string, charts []Chart, o Options) ([]Result, error) {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	fetched := 0
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 5 * time.Minute}
	}
	local := readLocalIndex(dir)
	results := make([]Result, len(charts))
	indexes := map[string]*repo.IndexFile{}
	indexErr := map[string]error{}
	var failed []Result
	unreachable := false
	for i, c := range charts {
		r := Result{Chart: c.Name, Version: c.Version, File: c.file()}
		if sum, ok := present(dir, local, c); ok {
			r.Status, r.Digest = "present", sum
		} else {
			src := c.Repo
			if o.From != "" {
				src = o.From
			}
			r.Source = src
			if _, seen := indexes[src]; !seen {
				idx, err := loadIndex(ctx, o.Client, src)
				indexes[src], indexErr[src] = idx, err
			}
			switch idx, err := indexes[src], indexErr[src]; {
			case err != nil:
				r.Status, r.Error = "failed", err.Error()
				unreachable = true
			default:
				cv := find(idx, c)
				if cv == nil {
					r.Status, r.Error = "missing", "not in "+src
					if !o.AllowMissing {
						r.Status = "failed"
					}
					break
				}
				n, sum, err := fetch(ctx, o.Client, src, cv, dir, c)
				if err != nil {
					r.Status, r.Error = "failed", err.Error()
					break
				}
				r.Status, r.Bytes, r.Digest = "fetched", n, sum
				fetched++
			}
		}
		if r.Status == "failed" {
			failed = append(failed, r)
		}
		results[i] = r
		if o.Done != nil {
			o.Done(r)
		}
	}
	switch {
	case fetched == 0 && os.IsNotExist(statErr):
		// Nothing came: leave no empty mirror behind.
		os.Remove(dir)
	case fetched > 0 || len(local.Entries) == 0:
		if err := writeIndex(dir); err != nil {
			return results, err
		}
	}
	if len(failed) > 0 {
		return results, &Error{Failed: failed, Unreachable: unreachable}
	}
	return results, nil
}

// readLocalIndex is dir's own index, or an empty one.
func readLocalIndex(dir string) *repo.IndexFile {
	idx, err := repo.LoadIndexFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		return repo.NewIndexFile()
	}
	return idx
}

// present reports whether dir holds c with the digest its index records.
func present(dir string, local *repo.IndexFile, c Chart) (string, bool) {
	cv := find(local, c)
	if cv == nil || cv.Digest == "" {
		return "", false
	}
	sum, err := digestFile(filepath.Join(dir, c.file()))
	return sum, err == nil && sum == cv.Digest
}

func find(idx *repo.IndexFile, c Chart) *repo.ChartVersion {
	for _, cv := range idx.Entries[c.Name] {
		if cv.Version == c.Version || cv.Version == "v"+c.Version {
			return cv
		}
	}
	return nil
}

// folderOf is src as a folder path, and false when src is an http(s) URL.
func folderOf(src string) (string, bool) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return "", false
	}
	return strings.TrimPrefix(src, "file://"), true
}

// What CheckSource refuses.
var (
	ErrNotRepository = errors.New("not a Helm repository URL or folder")
	ErrNoIndex       = errors.New("no index.yaml there")
)

// CheckSource refuses, before anything is read, what cannot be a source: a
// scheme other than http(s) or file:// (an OCI registry, say), or a folder
// without index.yaml.
func CheckSource(src string) error {
	p, isFolder := folderOf(src)
	switch {
	case !isFolder:
		return nil
	case strings.Contains(p, "://"):
		return ErrNotRepository
	}
	if _, err := os.Stat(filepath.Join(p, "index.yaml")); err != nil {
		return ErrNoIndex
	}
	return nil
}

// loadIndex reads src's index.yaml.
func loadIndex(ctx context.Context, hc *http.Client, src string) (*repo.IndexFile, error) {
	var data []byte
	if folder, ok := folderOf(src); !ok {
		rc, err := get(ctx, hc, strings.TrimSuffix(src, "/")+"/index.yaml")
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if data, err = io.ReadAll(rc); err != nil {
			return nil, fmt.Errorf("reading %s/index.yaml: %w", src, err)
		}
	} else {
		var err error
		if data, err = os.ReadFile(filepath.Join(folder, "index.yaml")); err != nil {
			return nil, fmt.Errorf("%s is not a Helm repository folder: %w", src, err)
		}
	}
	idx := repo.NewIndexFile()
	if err := yaml.Unmarshal(data, idx); err != nil {
		return nil, fmt.Errorf("%s/index.yaml is not a Helm repository index: %w", src, err)
	}
	if len(idx.Entries) == 0 {
		return nil, fmt.Errorf("%s/index.yaml lists no charts", src)
	}
	return idx, nil
}

// get fetches u, failing on anything but 200.
func get(ctx context.Context, hc *http.Client, u string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", u, unwrapURL(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return resp.Body, nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// fetch copies cv's archive from src into dir as c's file, through a
// temporary file that becomes c's only once its digest and content check.
func fetch(ctx context.Context, hc *http.Client, src string, cv *repo.ChartVersion, dir string, c Chart) (int64, string, error) {
	if len(cv.URLs) == 0 {
		return 0, "", fmt.Errorf("%s lists it without a URL", src)
	}
	var rc io.ReadCloser
	if folder, ok := folderOf(src); !ok {
		u, err := repo.ResolveReferenceURL(src, cv.URLs[0])
		if err != nil {
			return 0, "", err
		}
		if rc, err = get(ctx, hc, u); err != nil {
			return 0, "", err
		}
	} else {
		p := cv.URLs[0]
		if !filepath.IsAbs(p) {
			p = filepath.Join(folder, p)
		}
		f, err := os.Open(p)
		if err != nil {
			return 0, "", err
		}
		rc = f
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("download cut after %d bytes: %w", n, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if cv.Digest != "" && sum != cv.Digest {
		return 0, "", fmt.Errorf("digest mismatch: the index says sha256:%s, the file is sha256:%s (a changed or corrupted archive; not kept)", cv.Digest, sum)
	}
	ch, err := loader.Load(tmp.Name())
	if err != nil {
		return 0, "", fmt.Errorf("not a chart archive: %w", err)
	}
	if ch.Name() != c.Name || ch.Metadata.Version != c.Version {
		return 0, "", fmt.Errorf("the archive holds %s %s, not %s %s (not kept)", ch.Name(), ch.Metadata.Version, c.Name, c.Version)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, "", err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, c.file())); err != nil {
		return 0, "", err
	}
	return n, sum, nil
}

// writeIndex indexes every chart archive in dir, with URLs relative to it.
func writeIndex(dir string) error {
	idx, err := repo.IndexDirectory(dir, "")
	if err != nil {
		return err
	}
	idx.SortEntries()
	return idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644)
}

func digestFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
