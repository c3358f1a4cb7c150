package rollout

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/liftoff-dev/liftoff/internal/failure"
)

// SmokeMode says whether a deploy tests the new slot end to end before the flip.
type SmokeMode string

// Smoke modes.
const (
	// SmokeAuto tests when the API server can reach the pods, and skips with
	// a warning when the cluster network does not allow it.
	SmokeAuto SmokeMode = "auto"
	SmokeOn   SmokeMode = "on"
	SmokeOff  SmokeMode = "off"
)

// ErrUnreachable means the smoke test could not reach the app at all.
var ErrUnreachable = errors.New("the app is not reachable through the API server")

// smoke tests the preview Service through the API server's service proxy.
func (e *Client) smoke(ctx context.Context) error { return e.smokeService(ctx, e.PreviewService()) }

// SmokeLive smoke-tests the live slot through the live Service: after a
// change to what it runs on (a restore, a migration), before it is trusted.
func (e *Client) SmokeLive(ctx context.Context) error { return e.smokeService(ctx, e.StableService()) }

// smokeService smoke-tests the slot behind a Service through the API server's service proxy.
func (e *Client) smokeService(ctx context.Context, svc string) error {
	if e.Smoke == SmokeOff {
		return nil
	}
	tr, err := rest.TransportFor(e.Rest)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := strings.TrimSuffix(e.Rest.Host, "/") + fmt.Sprintf("/api/v1/namespaces/%s/services/http:%s:http/proxy", e.Ref.Namespace, svc)
	err = Smoke(ctx, client, base)
	if errors.Is(err, ErrUnreachable) && e.Smoke == SmokeAuto {
		e.Log.Warnf("smoke test skipped: %v (run with --smoke on to require it)", err)
		return nil
	}
	if err != nil {
		fix := "the new slot answers but misbehaves; traffic was not flipped"
		if svc == e.StableService() {
			fix = "the live slot answers but misbehaves"
		}
		return failure.New(failure.Health, fmt.Errorf("smoke test through %s: %w", svc, err), fix)
	}
	e.Log.Infof("smoke test passed through %s: created a link, resolved it, checked the redirect", svc)
	return nil
}

// Smoke checks a running shortener at base: ready, create a user and a link,
// follow the link's redirect, then delete what it created.
func Smoke(ctx context.Context, client *http.Client, base string) error {
	do := func(method, path string, body any) (int, http.Header, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return 0, nil, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, resp.Header, b, nil
	}
	code, _, body, err := do("GET", "/ready", nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if code == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"kind":"Status"`)) {
		return fmt.Errorf("%w: %s", ErrUnreachable, firstLine(string(body)))
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET /ready: %d %s", code, firstLine(string(body)))
	}
	tag := make([]byte, 6)
	rand.Read(tag)
	id := hex.EncodeToString(tag)
	code, _, body, err = do("POST", "/users", map[string]string{"username": "liftoff-smoke-" + id, "email": id + "@smoke.liftoff.invalid"})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("POST /users: %d %v %s", code, err, firstLine(string(body)))
	}
	var user struct{ ID int64 }
	json.Unmarshal(body, &user)
	defer do("DELETE", fmt.Sprintf("/users/%d", user.ID), nil)
	target := "https://smoke.liftoff.invalid/" + id
	code, _, body, err = do("POST", "/urls", map[string]any{"user_id": user.ID, "original_url": target, "title": "liftoff smoke test"})
	if err != nil || code != http.StatusCreated {
		return fmt.Errorf("POST /urls: %d %v %s", code, err, firstLine(string(body)))
	}
	var link struct {
		ShortCode string `json:"short_code"`
	}
	json.Unmarshal(body, &link)
	code, hdr, body, err := do("GET", "/"+link.ShortCode, nil)
	if err != nil || (code != http.StatusFound && code != http.StatusMovedPermanently) || hdr.Get("Location") != target {
		return fmt.Errorf("GET /%s: %d %v, Location %q, want a redirect to %s", link.ShortCode, code, err, hdr.Get("Location"), target)
	}
	return nil
}
