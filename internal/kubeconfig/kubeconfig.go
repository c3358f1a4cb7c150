// Package kubeconfig merges a stack's kubeconfig into the user's, replacing
// only the entries named after the stack and keeping everything else.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/liftoff-dev/liftoff/internal/atomicfile"
)

// Merge adds every cluster, user and context of doc to the kubeconfig file at
// path (created if missing), replacing same-named entries. The current
// context changes only when setCurrent is true. It returns the contexts added.
func Merge(path string, doc []byte, setCurrent bool) ([]string, error) {
	in, err := clientcmd.Load(doc)
	if err != nil {
		return nil, fmt.Errorf("stack kubeconfig: %w", err)
	}
	var added []string
	// Under the file's lock, written beside and renamed: two merges at once
	// both land, and a crash never leaves a truncated kubeconfig.
	err = atomicfile.Update(path, 0o600, func(old []byte, exists bool) ([]byte, error) {
		out := clientcmdapi.NewConfig()
		if exists {
			var err error
			if out, err = clientcmd.Load(old); err != nil {
				return nil, fmt.Errorf("%s: %w (nothing was changed)", path, err)
			}
		}
		for k, v := range in.Clusters {
			out.Clusters[k] = v
		}
		for k, v := range in.AuthInfos {
			out.AuthInfos[k] = v
		}
		added = added[:0]
		for k, v := range in.Contexts {
			out.Contexts[k] = v
			added = append(added, k)
		}
		if setCurrent || out.CurrentContext == "" {
			out.CurrentContext = in.CurrentContext
		}
		return clientcmd.Write(*out)
	})
	if err != nil {
		return nil, err
	}
	return added, nil
}
