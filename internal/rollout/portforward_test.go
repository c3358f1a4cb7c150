package rollout

import (
	"context"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/liftoff-dev/liftoff/internal/testenv"
)

// TestPortForwardPush pushes an image through PortForward to a registry pod
// only the cluster reaches: the API server hands the stream to the pod's
// (simulated) kubelet, which kwok forwards to a registry on loopback.
func TestPortForwardPush(t *testing.T) {
	reg := testenv.StartRegistryOn(t, cluster.ForwardPort)
	ctx := context.Background()
	ns := namespace(t)
	kube := cluster.Client.CoreV1()
	kube.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	kube.Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "registry-0", Labels: map[string]string{"app.kubernetes.io/name": "registry"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "registry", Image: "registry:2.8.3", Ports: []corev1.ContainerPort{{Name: "main", ContainerPort: 5000}}}}}},
		metav1.CreateOptions{})
	kube.Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "registry"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "registry"}, Ports: []corev1.ServicePort{{Port: 5000}}}}, metav1.CreateOptions{})

	var addr string
	var stop func()
	var err error
	waitFor(t, "a ready endpoint", func() bool {
		addr, stop, err = PortForward(ctx, cluster.Rest, ns+"/registry:5000")
		return err == nil
	})
	defer stop()
	img, _ := random.Image(1024, 2)
	ref, _ := name.ParseReference(addr+"/app:pf", name.Insecure)
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push through the port-forward: %v", err)
	}
	direct, _ := name.ParseReference(reg.Host+"/app:pf", name.Insecure)
	got, err := remote.Image(direct)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := got.Digest()
	if d1 != d2 {
		t.Errorf("pushed %s, registry has %s", d1, d2)
	}
	if _, _, err := PortForward(ctx, cluster.Rest, ns+"/nothing:5000"); err == nil {
		t.Error("port-forward to a service without pods succeeded")
	}
}
