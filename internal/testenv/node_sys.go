package testenv

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"
)

const killSignal = syscall.SIGKILL

const (
	x509ClientAuth = x509.ExtKeyUsageClientAuth
	x509ServerAuth = x509.ExtKeyUsageServerAuth
)

// unmount detaches a mount at once, even while something still uses it.
func unmount(path string) error { return syscall.Unmount(path, syscall.MNT_DETACH) }

// shimSocket is where containerd 1.6's runc shim listens for a container: a
// hash of containerd's address, the namespace and the id, under
// /run/containerd/s whatever containerd's state directory is.
func shimSocket(address, namespace, id string) string {
	return fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(filepath.Join(address, namespace, id))))
}

func writeKubeconfigFile(path, server, context string, ca, cert, key []byte) error {
	return clientcmd.WriteToFile(*clientcmdConfig(server, context, ca, cert, key), path)
}
