// Package kubeconfig merges a stack's kubeconfig into the user's, replacing
// only the entries named after the stack and keeping everything else.
package kubeconfig

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Merge adds every cluster, user and context of doc to the kubeconfig file at
// path (created if missing), replacing same-named entries. The current
// context changes only when setCurrent is true. It returns the contexts added.
func Merge(path string, doc []byte, setCurrent bool) ([]string, error) {
	in, err := clientcmd.Load(doc)
	if err != nil {
		return nil, fmt.Errorf("stack kubeconfig: %w", err)
	}
	out := clientcmdapi.NewConfig()
	if b, err := os.ReadFile(path); err == nil {
		if out, err = clientcmd.Load(b); err != nil {
			return nil, fmt.Errorf("%s: %w (nothing was changed)", path, err)
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	for k, v := range in.Clusters {
		out.Clusters[k] = v
	}
	for k, v := range in.AuthInfos {
		out.AuthInfos[k] = v
	}
	var added []string
	for k, v := range in.Contexts {
		out.Contexts[k] = v
		added = append(added, k)
	}
	if setCurrent || out.CurrentContext == "" {
		out.CurrentContext = in.CurrentContext
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Write beside and rename: a crash never leaves a truncated kubeconfig.
	b, err := clientcmd.Write(*out)
	if err != nil {
		return nil, err
	}
	tmp := path + ".liftoff-tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	return added, os.Rename(tmp, path)
}
