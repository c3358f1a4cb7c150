package main

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestE2EDeploy is `make e2e`: liftoff deploy builds the shortener's image,
// pushes it to an in-process registry and rolls it out on the local test
// cluster (real control plane, kwok nodes) twice, blue then green, then
// rolls back. Each step is checked against the cluster, not only exit codes.
func TestE2EDeploy(t *testing.T) {
	cl := testenv.StartCluster(t)
	reg := testenv.StartRegistry(t)
	c := newCLI(t)
	c.dir = testenv.RepoRoot(t)
	ctx := context.Background()
	ns := "shop"
	cl.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	cl.Client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shortener-env"},
		StringData: map[string]string{"DATABASE_URL": "postgres://app@db.shop:5432/app"}}, metav1.CreateOptions{})
	target := []string{"--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--namespace", ns, "--registry", reg.Host + "/shortener",
		"--platform", "linux/amd64", "--smoke", "off", "--detach"}
	selected := func() string {
		svc, err := cl.Client.CoreV1().Services(ns).Get(ctx, "shortener", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return svc.Spec.Selector["liftoff.dev/slot"]
	}
	imageOf := func(slot string) string {
		d, err := cl.Client.AppsV1().Deployments(ns).Get(ctx, "shortener-"+slot, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d.Spec.Template.Spec.Containers[0].Image
	}

	r := c.mustRun(append([]string{"deploy"}, target...)...)
	for _, want := range []string{"==> build", "==> push", "==> deploy", "traffic flipped"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("first deploy: stderr lacks %q:\n%s", want, r.err)
		}
	}
	if !strings.Contains(r.out, "slot blue is live in shop") || selected() != "blue" {
		t.Fatalf("first deploy: %s (selector %s)", r.out, selected())
	}
	img := imageOf("blue")
	if !strings.HasPrefix(img, reg.Host+"/shortener@sha256:") {
		t.Fatalf("blue runs %s, not the pushed digest", img)
	}

	r = c.mustRun(append([]string{"deploy", "--json"}, target...)...)
	evs := validEvents(t, r.out)
	if last := evs[len(evs)-1]; last.Type != "summary" || last.Outputs["live"] != "green" || selected() != "green" || imageOf("green") != img {
		t.Fatalf("second deploy: %+v (selector %s)", last, selected())
	}

	r = c.mustRun("rollback", "--kubeconfig", cl.Kubeconfig, "--context", cl.Context, "--namespace", ns)
	if !strings.Contains(r.out, "slot blue is live") || selected() != "blue" {
		t.Fatalf("rollback: %s (selector %s)", r.out, selected())
	}
	// A deploy of an unusable image reference changes nothing.
	if r := c.run("deploy", "--image", "not a ref", "--kubeconfig", cl.Kubeconfig, "--namespace", ns); r.code != 2 || selected() != "blue" {
		t.Errorf("bad image: %+v", r)
	}
}
