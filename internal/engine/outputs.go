package engine

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
)

// The property-value signatures of Pulumi's state format: an object whose
// sigKey is secretSig holds a secret's ciphertext.
const (
	sigKey    = "4dabf18193072939515e22adb298388d"
	secretSig = "1b47061264138c4ac30d75fd1eb44270"
)

// errNotLocal: the outputs cannot be read here (no checkpoint on disk, a
// secrets provider other than the passphrase, a value of a kind this reader
// does not decode); the CLI is asked instead.
var errNotLocal = errors.New("outputs not readable from the checkpoint")

// latestState is what this file reads of a checkpoint's latest deployment.
type latestState struct {
	SecretsProviders *struct {
		Type  string `json:"type"`
		State struct {
			Salt string `json:"salt"`
		} `json:"state"`
	} `json:"secrets_providers"`
	Resources []struct {
		Type    string         `json:"type"`
		Parent  string         `json:"parent"`
		Outputs map[string]any `json:"outputs"`
	} `json:"resources"`
}

// passphraseSalt is the passphrase provider's salt state, when that is the
// deployment's secrets provider.
func (l *latestState) passphraseSalt() (string, bool) {
	if p := l.SecretsProviders; p != nil && p.Type == "passphrase" {
		return p.State.Salt, true
	}
	return "", false
}

// rootOutputs are the stack resource's outputs in their state form (nil
// before a program has run).
func (l *latestState) rootOutputs() map[string]any {
	for _, r := range l.Resources {
		if r.Type == "pulumi:pulumi:Stack" && r.Parent == "" {
			return r.Outputs
		}
	}
	return nil
}

// latest reads the stack's checkpoint from disk: its raw bytes and its latest
// deployment.
func (s *Stack) latest() ([]byte, *latestState, bool) {
	b, ok := s.checkpoint()
	if !ok {
		return nil, nil, false
	}
	var chk struct {
		Checkpoint struct {
			Latest *latestState `json:"latest"`
		} `json:"checkpoint"`
	}
	if json.Unmarshal(b, &chk) != nil || chk.Checkpoint.Latest == nil {
		return nil, nil, false
	}
	return b, chk.Checkpoint.Latest, true
}

// localOutputs reads the stack's outputs from its checkpoint on a file
// backend, decrypting secrets in-process with the passphrase, as
// `pulumi stack output --show-secrets` does. The Automation API asks the CLI
// twice (0.2 s, and 0.4-0.5 s decrypting): most of what an up with nothing to
// do costs after its run. The passphrase's key derivation (0.2 s) is paid only
// when an output is secret.
func (s *Stack) localOutputs(ctx context.Context) (Outputs, error) {
	_, latest, ok := s.latest()
	if !ok {
		return nil, errNotLocal
	}
	d := &decoder{ctx: ctx, crypter: func() (config.Crypter, error) {
		salt, ok := latest.passphraseSalt()
		if !ok {
			return nil, errNotLocal
		}
		return s.e.crypter(ctx, salt)
	}}
	out := Outputs{} // a stack that has not run a program yet has none
	for k, raw := range latest.rootOutputs() {
		v, secret, err := d.value(raw)
		if err != nil {
			return nil, err
		}
		out[k] = Output{Value: v, Secret: secret}
	}
	return out, nil
}

// decoder turns a state property value into the plain value the CLI prints,
// reporting whether any part of it was secret.
type decoder struct {
	ctx     context.Context
	crypter func() (config.Crypter, error) // asked at the first secret
}

func (d *decoder) value(v any) (any, bool, error) {
	switch v := v.(type) {
	case map[string]any:
		if sig, ok := v[sigKey]; ok {
			if sig != secretSig {
				return nil, false, errNotLocal // an asset, archive or resource reference
			}
			inner, err := d.decrypt(v["ciphertext"])
			if err != nil {
				return nil, false, err
			}
			plain, _, err := d.value(inner)
			return plain, true, err
		}
		out, secret := make(map[string]any, len(v)), false
		for k, e := range v {
			p, s, err := d.value(e)
			if err != nil {
				return nil, false, err
			}
			out[k], secret = p, secret || s
		}
		return out, secret, nil
	case []any:
		out, secret := make([]any, len(v)), false
		for i, e := range v {
			p, s, err := d.value(e)
			if err != nil {
				return nil, false, err
			}
			out[i], secret = p, secret || s
		}
		return out, secret, nil
	default:
		return v, false, nil
	}
}

// decrypt opens one secret: its ciphertext holds the JSON of the value.
func (d *decoder) decrypt(ciphertext any) (any, error) {
	ct, ok := ciphertext.(string)
	if !ok {
		return nil, errNotLocal
	}
	c, err := d.crypter()
	if err != nil {
		return nil, err
	}
	plain, err := c.DecryptValue(d.ctx, ct)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotLocal, err)
	}
	var v any
	if err := json.Unmarshal([]byte(plain), &v); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotLocal, err)
	}
	return v, nil
}

// crypter is the passphrase provider's crypter for a stack's salt state,
// derived once per engine and passphrase (the key derivation is 0.2 s) and
// kept in memory only.
func (e *Engine) crypter(ctx context.Context, state string) (config.Crypter, error) {
	phrase, ok := e.passphrase()
	if !ok {
		return nil, errNotLocal
	}
	k := [2]string{phrase, state}
	e.keysMu.Lock()
	f, ok := e.keys[k]
	if !ok {
		// Derived once for whoever asks first; later callers share the key.
		dctx := context.WithoutCancel(ctx)
		f = sync.OnceValues(func() (config.Crypter, error) { return passphraseCrypter(dctx, phrase, state) })
		if e.keys == nil {
			e.keys = map[[2]string]func() (config.Crypter, error){}
		}
		e.keys[k] = f
	}
	e.keysMu.Unlock()
	return f()
}

// deriveKeyAhead starts deriving the key the outputs after an up will need,
// while the up runs, when the stack's checkpoint holds secrets.
func (s *Stack) deriveKeyAhead(ctx context.Context) {
	b, latest, ok := s.latest()
	if !ok || !bytes.Contains(b, []byte(secretSig)) {
		return
	}
	if salt, ok := latest.passphraseSalt(); ok {
		go s.e.crypter(ctx, salt)
	}
}

// passphraseCrypter is the passphrase secrets provider's crypter for a
// state "v1:<salt>:<ciphertext of "pulumi">", checked against that message
// as the CLI checks it (a wrong passphrase is left to the CLI to report).
func passphraseCrypter(ctx context.Context, phrase, state string) (config.Crypter, error) {
	parts := strings.SplitN(state, ":", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, errNotLocal
	}
	salt, err := base64.StdEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errNotLocal
	}
	c := config.NewSymmetricCrypterFromPassphrase(phrase, salt)
	if check, err := c.DecryptValue(ctx, parts[2]); err != nil || check != "pulumi" {
		return nil, errNotLocal
	}
	return c, nil
}

// passphrase is the one the CLI would use: PULUMI_CONFIG_PASSPHRASE, else
// the file PULUMI_CONFIG_PASSPHRASE_FILE names (relative to the project),
// from liftoff's environment for the CLI first and then the process's own.
func (e *Engine) passphrase() (string, bool) {
	get := func(k string) string {
		if v, ok := e.env[k]; ok {
			return v
		}
		return e.o.Getenv(k)
	}
	if p := get("PULUMI_CONFIG_PASSPHRASE"); p != "" {
		return p, true
	}
	f := get("PULUMI_CONFIG_PASSPHRASE_FILE")
	if f == "" {
		return "", false
	}
	if !filepath.IsAbs(f) {
		f = filepath.Join(e.o.Dir, f)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// Empty reports whether the stack is known to hold no resource yet: its
// checkpoint is on disk and lists none, or there is no checkpoint on a
// file backend. On other backends it cannot tell and says false.
func (s *Stack) Empty() bool {
	if _, latest, ok := s.latest(); ok {
		return len(latest.Resources) == 0
	}
	_, local := FileBackendDir(s.e.Backend())
	return local && !s.e.hasCheckpoint(s.name)
}

// errSealed stops the plain reader at a secret.
var errSealed = errors.New("sealed")

// PlainOutputs reads the stack's outputs without opening any secret: what
// a reader without the stack's passphrase (or KMS key) may know. The
// secret outputs are left out and named in sealed. It reads the state as
// `pulumi stack export` gives it (the checkpoint on a file backend), which
// needs no secrets provider; a preview reads its parent this way with its
// own passphrase.
func (s *Stack) PlainOutputs(ctx context.Context) (plain Outputs, sealed []string, err error) {
	var latest latestState // as `pulumi stack export` gives it: secrets encrypted
	if err := s.readState(ctx, &latest); err != nil {
		return nil, nil, err
	}
	plain = Outputs{}
	d := &decoder{ctx: ctx, crypter: func() (config.Crypter, error) { return nil, errSealed }}
	for k, v := range latest.rootOutputs() {
		switch p, _, err := d.value(v); {
		case errors.Is(err, errSealed):
			sealed = append(sealed, k)
		case err == nil:
			plain[k] = Output{Value: p}
		}
	}
	sort.Strings(sealed)
	return plain, sealed, nil
}

// OpensSecrets reports whether this engine's passphrase opens the stack's
// secrets. It answers false only when it knows: a passphrase-encrypted
// state with a passphrase that is missing or another one. Other providers
// (KMS) answer true, and the CLI reports what they refuse.
func (s *Stack) OpensSecrets(ctx context.Context) (bool, error) {
	var latest latestState
	if err := s.readState(ctx, &latest); err != nil {
		return false, err
	}
	salt, ok := latest.passphraseSalt()
	if !ok {
		return true, nil
	}
	_, err := s.e.crypter(ctx, salt)
	return err == nil, nil
}
