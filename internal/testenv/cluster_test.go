package testenv

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func deployment(name string, labels map[string]string) *appsv1.Deployment {
	sel := map[string]string{"app": name}
	pl := map[string]string{"app": name}
	for k, v := range labels {
		pl[k] = v
	}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: pl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.com/app:1"}}}}}}
}

// TestCluster: a Deployment becomes ready and its Service's EndpointSlice
// fills; a pod labelled to crash-loop reports CrashLoopBackOff.
func TestCluster(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, deployment("web", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	waitUntil(t, c, "deployment ready", func() bool {
		d, err := c.Client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2 && d.Status.ObservedGeneration == d.Generation
	})
	waitUntil(t, c, "endpoints", func() bool {
		es, err := c.Client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		n := 0
		if err == nil {
			for _, s := range es.Items {
				for _, e := range s.Endpoints {
					if e.Conditions.Ready != nil && *e.Conditions.Ready {
						n++
					}
				}
			}
		}
		return n == 2
	})
	if _, err := c.Client.AppsV1().Deployments("default").Create(ctx, deployment("crash", map[string]string{"kwok.liftoff.dev/behaviour": "crashloop"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, c, "crashloop", func() bool {
		pods, _ := c.Client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=crash"})
		for _, p := range pods.Items {
			for _, s := range p.Status.ContainerStatuses {
				if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
					return true
				}
			}
		}
		return false
	})
}

func waitUntil(t *testing.T, c *Cluster, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s\n%s", what, c.Logs(15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
