package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// pki is the cluster's certificates, written as files in dir.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	client tlsPair
}

type tlsPair struct{ cert, key []byte }

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

// writePKI writes the cluster's CA and certificates; the API server's is
// valid for loopback and for ips (where nodes reach it, the kubernetes
// Service's ClusterIP).
func writePKI(dir string, ips []net.IP) (*pki, error) {
	p := &pki{dir: filepath.Join(dir, "pki")}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liftoff-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	if err := writePEM(p.path("ca.crt"), "CERTIFICATE", der); err != nil {
		return nil, err
	}
	serverCert, serverKey, err := p.issue("kube-apiserver", nil, []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		append([]net.IP{net.ParseIP("127.0.0.1")}, ips...), x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	os.WriteFile(p.path("apiserver.crt"), serverCert, 0o600)
	os.WriteFile(p.path("apiserver.key"), serverKey, 0o600)
	kc, kk, err := p.issue("kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	os.WriteFile(p.path("apiserver-kubelet-client.crt"), kc, 0o600)
	os.WriteFile(p.path("apiserver-kubelet-client.key"), kk, 0o600)
	// The aggregation layer's client: how the API server proves itself to
	// the API servers it fronts (metrics-server), which trust only this name.
	fc, fk, err := p.issue(frontProxyClient, nil, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	os.WriteFile(p.path("front-proxy-client.crt"), fc, 0o600)
	os.WriteFile(p.path("front-proxy-client.key"), fk, 0o600)
	cc, ck, err := p.issue("admin", []string{"system:masters"}, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	p.client = tlsPair{cc, ck}
	saKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kb, _ := x509.MarshalECPrivateKey(saKey)
	pb, _ := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err := writePEM(p.path("sa.key"), "EC PRIVATE KEY", kb); err != nil {
		return nil, err
	}
	return p, writePEM(p.path("sa.pub"), "PUBLIC KEY", pb)
}

// frontProxyClient is the aggregation layer client's name.
const frontProxyClient = "front-proxy-client"

var serial int64 = 1

func (p *pki) issue(cn string, orgs, dns []string, ips []net.IP, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), DNSNames: dns, IPAddresses: ips,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func (p *pki) writeKubeconfig(path, server, context string) error {
	caPEM, _ := os.ReadFile(p.path("ca.crt"))
	cfg := clientcmdConfig(server, context, caPEM, p.client.cert, p.client.key)
	return clientcmd.WriteToFile(*cfg, path)
}
