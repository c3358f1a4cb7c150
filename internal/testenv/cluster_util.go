package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"time"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func findCommand(name string) (string, error) {
	for _, dir := range []string{"", "/usr/sbin/", "/usr/lib/postgresql/15/bin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

func goarch() string { return runtime.GOARCH }

func insecureClient() *http.Client {
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func (p *pki) tlsClient() (*http.Client, error) {
	cert, err := tls.X509KeyPair(p.client.cert, p.client.key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}, nil
}

func clientcmdConfig(server, context string, ca, cert, key []byte) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[context] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[context] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[context] = &clientcmdapi.Context{Cluster: context, AuthInfo: context, Namespace: "default"}
	cfg.CurrentContext = context
	return cfg
}
