package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func (c *Cluster) addNode(name string, tainted bool) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
		Status: corev1.NodeStatus{
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("110")},
		},
	}
	if tainted {
		n.Spec.Taints = []corev1.Taint{{Key: KwokTaint, Value: "fake", Effect: corev1.TaintEffectNoSchedule}}
	}
	_, err := c.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	return err
}

func (c *Cluster) waitNodesReady() error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		nodes, err := c.Client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
		ready, want := 0, len(c.Nodes)
		if c.Node != nil {
			want++
		}
		if err == nil {
			for _, n := range nodes.Items {
				for _, cond := range n.Status.Conditions {
					if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue && !notReadyTainted(n) {
						ready++
					}
				}
			}
		}
		if ready == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes ready and schedulable after 60s:\n%s", ready, want, c.Logs(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// notReadyTainted reports the taints the node lifecycle puts on a node until it is Ready.
func notReadyTainted(n corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			return true
		}
	}
	return false
}

func writeStages(path string, forwardPort int) error {
	ents, err := kwokStages.ReadDir("kwok")
	if err != nil {
		return err
	}
	docs := []string{fmt.Sprintf(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: registry
spec:
  selector:
    matchNames: [registry-0]
  forwards:
  - ports: [5000]
    target:
      port: %d
      address: 127.0.0.1`, forwardPort)}
	for _, e := range ents {
		b, err := kwokStages.ReadFile("kwok/" + e.Name())
		if err != nil {
			return err
		}
		docs = append(docs, strings.TrimSpace(string(b)))
	}
	return os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644)
}
