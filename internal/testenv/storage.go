package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// StorageClass is the real node's default StorageClass: a claim gets a
// directory on the node, as k3s's local-path provisioner does.
const StorageClass = "local"

const (
	provisionerName = "liftoff.dev/testenv-local"
	annProvisioned  = "liftoff.dev/testenv-volume"
)

// localStorage provisions the real node's volumes: for each pending claim
// of StorageClass it makes a directory under the node's volumes directory
// and a hostPath PersistentVolume bound to the claim and pinned to the node;
// a volume whose claim is gone (reclaim policy Delete) is removed, data and
// all. It is the cluster's storage add-on, as a user's cluster has one.
type localStorage struct {
	client kubernetes.Interface
	node   string
	dir    string
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLocalStorage(ctx context.Context, client kubernetes.Interface, node, dir string) (*localStorage, error) {
	sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: StorageClass,
		Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
		Provisioner: provisionerName, ReclaimPolicy: ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate)}
	if _, err := client.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("storage class: %w", err)
	}
	s := &localStorage{client: client, node: node, dir: dir, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			s.sync(context.Background())
		}
	}()
	return s, nil
}

func (s *localStorage) Close() {
	close(s.stop)
	s.wg.Wait()
}

// sync provisions pending claims and removes released volumes.
func (s *localStorage) sync(ctx context.Context) {
	claims, err := s.client.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, c := range claims.Items {
		if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || ptr.Deref(c.Spec.StorageClassName, "") != StorageClass || c.DeletionTimestamp != nil {
			continue
		}
		s.provision(ctx, c)
	}
	vols, err := s.client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, v := range vols.Items {
		if v.Annotations[annProvisioned] == "" || (v.Status.Phase != corev1.VolumeReleased && v.Status.Phase != corev1.VolumeFailed) {
			continue
		}
		if os.RemoveAll(v.Annotations[annProvisioned]) == nil {
			s.client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{})
		}
	}
}

func (s *localStorage) provision(ctx context.Context, c corev1.PersistentVolumeClaim) {
	path := filepath.Join(s.dir, "pvc-"+string(c.UID))
	if err := os.MkdirAll(path, 0o777); err != nil {
		return
	}
	os.Chmod(path, 0o777) // any pod user may write, as local-path does
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-" + string(c.UID), Annotations: map[string]string{annProvisioned: path,
			"pv.kubernetes.io/provisioned-by": provisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              StorageClass,
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: c.Namespace, Name: c.Name, UID: c.UID},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(corev1.HostPathDirectory)}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{s.node}}}}}}},
		},
	}
	s.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
}
