package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
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

// serviceAccountToken makes ServiceAccount ns/name, bound cluster-wide to
// clusterRole, and returns a token for it, valid for a day.
// CreateNamespace makes namespace name, failing the test if it cannot.
func (c *Cluster) CreateNamespace(t testing.TB, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

func (c *Cluster) serviceAccountToken(ctx context.Context, ns, name, clusterRole string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: clusterRole},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}
	if _, err := c.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	day := int64(24 * 3600)
	tr, err := c.Client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// ServiceAccountKubeconfig makes ServiceAccount ns/name, bound cluster-wide
// to clusterRole, and writes a kubeconfig that signs in to the cluster as
// it (a token valid for a day): the kind of user an operator makes for a
// CI job. It returns the file's path.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, ns, name, clusterRole string) (string, error) {
	token, err := c.serviceAccountToken(ctx, ns, name, clusterRole)
	if err != nil {
		return "", err
	}
	raw, err := clientcmd.LoadFromFile(c.Kubeconfig)
	if err != nil {
		return "", err
	}
	current := c.Context
	if current == "" {
		current = raw.CurrentContext
	}
	kctx, ok := raw.Contexts[current]
	if !ok {
		return "", fmt.Errorf("%s has no context %q", c.Kubeconfig, current)
	}
	raw.AuthInfos = map[string]*clientcmdapi.AuthInfo{name: {Token: token}}
	raw.Contexts = map[string]*clientcmdapi.Context{name: {Cluster: kctx.Cluster, AuthInfo: name}}
	raw.CurrentContext = name
	path := filepath.Join(c.Dir, name+".kubeconfig")
	return path, clientcmd.WriteToFile(*raw, path)
}
