// Package remote runs commands on hosts over SSH, verifying every host key
// against known_hosts and keys pinned in stack state: an unknown key is
// refused unless trust on first use was asked for, a changed key always.
package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host is one SSH endpoint.
type Host struct {
	Addr string
	Port int
	User string
	// KeyPath is a private key file; empty uses the SSH agent ($SSH_AUTH_SOCK).
	KeyPath string
}

// Address is host:port as known_hosts and pins name it.
func (h Host) Address() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// Trust decides which host keys are accepted.
type Trust struct {
	// KnownHosts is the known_hosts file (may not exist).
	KnownHosts string
	// Pinned are keys recorded in stack state by an earlier run, by Address,
	// in authorized_keys format.
	Pinned map[string]string
	// AcceptNew trusts a key seen for the first time and appends it to KnownHosts.
	AcceptNew bool

	mu       sync.Mutex
	accepted map[string]string
}

// UnknownHostError is an unknown host key, refused.
type UnknownHostError struct {
	Host        string
	Fingerprint string
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("host key of %s is unknown (%s)", e.Host, e.Fingerprint)
}

// ChangedHostError is a key that differs from the one known or pinned.
type ChangedHostError struct {
	Host, Want, Got string
}

func (e *ChangedHostError) Error() string {
	return fmt.Sprintf("host key of %s CHANGED: expected %s, got %s; someone may be intercepting the connection, or the host was reinstalled", e.Host, e.Want, e.Got)
}

// Accepted returns the key each host presented and was trusted with, for pinning.
func (t *Trust) Accepted() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.accepted))
	for k, v := range t.accepted {
		out[k] = v
	}
	return out
}

func (t *Trust) callback(addr string) ssh.HostKeyCallback {
	return func(_ string, remoteAddr net.Addr, key ssh.PublicKey) error {
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		if pin, ok := t.Pinned[addr]; ok {
			if pin != line {
				return &ChangedHostError{Host: addr, Want: fingerprintOf(pin), Got: ssh.FingerprintSHA256(key)}
			}
			t.accept(addr, line)
			return nil
		}
		var err error = &knownhosts.KeyError{}
		if cb, cerr := knownhosts.New(t.KnownHosts); cerr == nil {
			err = cb(addr, remoteAddr, key)
		} else if !errors.Is(cerr, os.ErrNotExist) {
			return fmt.Errorf("read %s: %w", t.KnownHosts, cerr)
		}
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			t.accept(addr, line)
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return &ChangedHostError{Host: addr, Want: ssh.FingerprintSHA256(ke.Want[0].Key), Got: ssh.FingerprintSHA256(key)}
		case errors.As(err, &ke) && t.AcceptNew:
			if err := t.remember(addr, key); err != nil {
				return err
			}
			t.accept(addr, line)
			return nil
		case errors.As(err, &ke):
			return &UnknownHostError{Host: addr, Fingerprint: ssh.FingerprintSHA256(key)}
		}
		return err
	}
}

func (t *Trust) accept(addr, line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.accepted == nil {
		t.accepted = map[string]string{}
	}
	t.accepted[addr] = line
}

func (t *Trust) remember(addr string, key ssh.PublicKey) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(t.KnownHosts), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(t.KnownHosts, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(addr)}, key))
	return err
}

func fingerprintOf(authorizedKey string) string {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	if err != nil {
		return "an unreadable pinned key"
	}
	return ssh.FingerprintSHA256(k)
}

// Client is a connection to one host.
type Client struct {
	Host Host
	c    *ssh.Client
}

// Dial connects and authenticates, verifying the host key with trust. The
// whole of it, the TCP connect and the SSH handshake, is bounded by timeout
// and ends when ctx does: a host that accepts and stays silent cannot hang
// the run.
func Dial(ctx context.Context, h Host, trust *Trust, timeout time.Duration) (*Client, error) {
	auth, err := authMethods(h)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", h.Address(), err)
	}
	cfg := &ssh.ClientConfig{User: h.User, Auth: auth, HostKeyCallback: trust.callback(h.Address()), Timeout: timeout,
		HostKeyAlgorithms: trust.algorithms(h.Address())}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", h.Address())
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", h.Address(), err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) }) // cancelled: the handshake's reads end now
	c, chans, reqs, err := ssh.NewClientConn(conn, h.Address(), cfg)
	if !stop() || err != nil {
		conn.Close()
		var ne net.Error
		switch {
		case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
			err = ctx.Err() // cancelled (Ctrl-C)
		case ctx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
			err = fmt.Errorf("no SSH handshake within %s (the host accepted the connection and did not answer)", timeout)
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", h.User, h.Address(), err)
	}
	conn.SetDeadline(time.Time{})
	return &Client{Host: h, c: ssh.NewClient(c, chans, reqs)}, nil
}

// algorithms are the host key algorithms to ask addr for: those of the keys
// pinned or in known_hosts for it, so a host with several keys shows the
// one we know (without this, a known_hosts holding only its RSA key meets
// its ed25519 key and reports a changed key). Nil, any, when none is known.
func (t *Trust) algorithms(addr string) []string {
	var keys []ssh.PublicKey
	if pin, ok := t.Pinned[addr]; ok {
		if k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pin)); err == nil {
			keys = append(keys, k)
		}
	} else if cb, err := knownhosts.New(t.KnownHosts); err == nil {
		// A key no host has: the error lists the keys known for addr.
		var ke *knownhosts.KeyError
		if errors.As(cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey), &ke) {
			for _, k := range ke.Want {
				keys = append(keys, k.Key)
			}
		}
	}
	var out []string
	for _, k := range keys {
		switch k.Type() {
		case ssh.KeyAlgoRSA:
			out = append(out, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			out = append(out, k.Type())
		}
	}
	return out
}

// probeKey is a key no host has (all zero), for asking known_hosts what it
// knows about a host.
var probeKey = func() ssh.PublicKey {
	k, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	return k
}()

func authMethods(h Host) ([]ssh.AuthMethod, error) {
	if h.KeyPath != "" {
		b, err := os.ReadFile(ExpandHome(h.KeyPath))
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("parse key %s: %w (passphrase-protected keys go through ssh-agent: leave key empty)", h.KeyPath, err)
		}
		return []ssh.AuthMethod{ssh.PublicKeys(s)}, nil
	}
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, errors.New("no key given and no ssh-agent running (set the node's key, or start ssh-agent and ssh-add)")
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(agent.NewClient(conn).Signers)}, nil
}

// ExpandHome expands a leading ~/ to the home directory.
func ExpandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return p
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Command string
	Code    int
	Stderr  string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.Code, strings.TrimSpace(e.Stderr))
}

// Run runs cmd with stdin and returns its stdout; a non-zero exit is an *ExitError.
// Cancelling ctx closes the session.
func (c *Client) Run(ctx context.Context, cmd string, stdin io.Reader) ([]byte, error) {
	s, err := c.c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: session: %w", c.Host.Address(), err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr, s.Stdin = &out, &errb, stdin
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case <-ctx.Done():
		s.Close()
		return out.Bytes(), ctx.Err()
	case err := <-done:
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			return out.Bytes(), &ExitError{Command: firstWord(cmd), Code: ee.ExitStatus(), Stderr: errb.String()}
		}
		if err != nil {
			return out.Bytes(), fmt.Errorf("ssh %s: %w", c.Host.Address(), err)
		}
		return out.Bytes(), nil
	}
}

func firstWord(cmd string) string {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return cmd
	}
	return strings.Join(f[:min(len(f), 3)], " ")
}

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }
