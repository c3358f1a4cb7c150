package remote

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// A host that accepts the connection and never speaks: Dial gives up at its
// timeout, and at once when the context ends.
func TestSilentHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	h := Host{Addr: "127.0.0.1", Port: port, User: "u", KeyPath: clientKey(t)}
	trust := &Trust{KnownHosts: filepath.Join(t.TempDir(), "known_hosts")}

	start := time.Now()
	_, err = Dial(context.Background(), h, trust, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no SSH handshake within 500ms") {
		t.Errorf("silent host: %v", err)
	}
	t.Logf("silent host refused after %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := Dial(ctx, h, trust, time.Hour); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled dial: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled dial still waits for the silent host")
	}
}

// A host with ECDSA, RSA and ed25519 keys (as OpenSSH makes them),
// known_hosts holding only its RSA key: the client asks for the key it
// knows and connects, instead of meeting the ECDSA key it prefers and
// reporting a changed key. A different RSA key is a changed key.
func TestKnownRSAKeyOnly(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaSigner, _ := ssh.NewSignerFromKey(rsaKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edSigner, _ := ssh.NewSignerFromKey(edKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecSigner, _ := ssh.NewSignerFromKey(ecKey)
	addr := serve(t, ecSigner, edSigner, rsaSigner)
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	h := Host{Addr: host, Port: port, User: "u", KeyPath: clientKey(t)}

	known := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(known, []byte(knownhosts.Line([]string{knownhosts.Normalize(h.Address())}, rsaSigner.PublicKey())+"\n"), 0o600)
	c, err := Dial(context.Background(), h, &Trust{KnownHosts: known}, 5*time.Second)
	if err != nil {
		t.Fatalf("known RSA key: %v", err)
	}
	c.Close()

	// Pinned in state: the same.
	pin := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaSigner.PublicKey())))
	c, err = Dial(context.Background(), h, &Trust{KnownHosts: filepath.Join(t.TempDir(), "none"), Pinned: map[string]string{h.Address(): pin}}, 5*time.Second)
	if err != nil {
		t.Fatalf("pinned RSA key: %v", err)
	}
	c.Close()

	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherPub, _ := ssh.NewPublicKey(&other.PublicKey)
	os.WriteFile(known, []byte(knownhosts.Line([]string{knownhosts.Normalize(h.Address())}, otherPub)+"\n"), 0o600)
	_, err = Dial(context.Background(), h, &Trust{KnownHosts: known}, 5*time.Second)
	var changed *ChangedHostError
	if !errors.As(err, &changed) {
		t.Errorf("another RSA key: %v", err)
	}
}

// serve runs an SSH server with the host keys that accepts any client key.
func serve(t *testing.T, keys ...ssh.Signer) string {
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(ssh.ConnMetadata, ssh.PublicKey) (*ssh.Permissions, error) { return nil, nil }}
	for _, k := range keys {
		cfg.AddHostKey(k)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for ch := range chans {
					ch.Reject(ssh.Prohibited, "no")
				}
				sc.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// clientKey writes a client private key and returns its path.
func clientKey(t *testing.T) string {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	b, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id")
	os.WriteFile(path, pem.EncodeToMemory(b), 0o600)
	return path
}
