package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestKubeconfigChecks: the kubeconfig target refuses, before anything is
// written or changed, a file that is not there, a context it lacks, a
// cluster that does not answer and a user that may not create what up
// makes; deploy refuses an image that is no reference.
func TestKubeconfigChecks(t *testing.T) {
	cl := testenv.StartCluster(t)
	c := newCLI(t).withEngine()
	ctx := context.Background()

	r := c.run("init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", "/nonexistent/config")
	if r.code != 2 || !strings.Contains(r.err, "/nonexistent/config does not exist") || !strings.Contains(r.err, "--kubeconfig") {
		t.Errorf("init with a missing file: exit %d\n%s", r.code, r.err)
	}
	r = c.run("init", "-s", "dev", "--target", "kubeconfig", "--kubeconfig", cl.Kubeconfig, "--context", "nope")
	if r.code != 2 || !strings.Contains(r.err, `no context "nope"`) || !strings.Contains(r.err, cl.Context) {
		t.Errorf("init with a context the file lacks: exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "Pulumi.dev.yaml")); !os.IsNotExist(err) {
		t.Fatalf("a refused init wrote the stack file: %v", err)
	}

	// A cluster that does not answer: up stops before the engine changes anything.
	c.mustRun("init", "-s", "gone", "--target", "kubeconfig", "--kubeconfig", kubeconfigFile(t), "--set", "observability=false")
	r = c.run("up", "-s", "gone", "--yes")
	if r.code != 2 || !strings.Contains(r.err, "does not answer") {
		t.Errorf("up on a cluster that does not answer: exit %d\n%s", r.code, r.err)
	}

	// A user the cluster knows but lets do nothing (a service account's token).
	sa, err := cl.Client.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cl.Client.CoreV1().ServiceAccounts("default").CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	weak := filepath.Join(t.TempDir(), "weak")
	os.WriteFile(weak, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, certificate-authority-data: %q}}]
users: [{name: nobody, user: {token: %q}}]
contexts: [{name: nobody, context: {cluster: c, user: nobody}}]
current-context: nobody
`, cl.Rest.Host, base64.StdEncoding.EncodeToString(cl.Rest.CAData), tok.Status.Token)), 0o600)
	c.mustRun("init", "-s", "weak", "--target", "kubeconfig", "--kubeconfig", weak, "--set", "observability=false", "--set", "namespace=weak")
	r = c.run("up", "-s", "weak", "--yes")
	if r.code != 3 || !strings.Contains(r.err, "may not create namespaces") {
		t.Errorf("up as a user without rights: exit %d\n%s", r.code, r.err)
	}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, "weak", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused up made its namespace: %v", err)
	}

	r = c.run("deploy", "-s", "weak", "--image", "not//an:image")
	if r.code != 2 || !strings.Contains(r.err, "repository path component") {
		t.Errorf("deploy --image not//an:image: exit %d\n%s", r.code, r.err)
	}
}
