package kubeconfig

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

const stack = `apiVersion: v1
kind: Config
clusters: [{name: lab, cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: Y2E=}}]
users: [{name: lab, user: {token: t}}]
contexts: [{name: lab, context: {cluster: lab, user: lab}}]
current-context: lab
`

const mine = `apiVersion: v1
kind: Config
clusters: [{name: work, cluster: {server: "https://work:6443"}}, {name: lab, cluster: {server: "https://old:6443"}}]
users: [{name: work, user: {token: w}}]
contexts: [{name: work, context: {cluster: work, user: work}}]
current-context: work
`

func TestMerge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	added, err := Merge(path, []byte(stack), false)
	if err != nil || len(added) != 1 || added[0] != "lab" {
		t.Fatalf("added %v, %v", added, err)
	}
	got, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CurrentContext != "work" || got.Clusters["work"] == nil || got.Clusters["lab"].Server != "https://10.0.0.1:6443" || got.AuthInfos["lab"].Token != "t" {
		t.Errorf("merged: current %s, clusters %v", got.CurrentContext, got.Clusters)
	}
	if _, err := Merge(path, []byte(stack), true); err != nil {
		t.Fatal(err)
	}
	if got, _ := clientcmd.LoadFromFile(path); got.CurrentContext != "lab" {
		t.Errorf("--set-current: %s", got.CurrentContext)
	}
	// A new file is created; a broken one is left alone.
	fresh := filepath.Join(t.TempDir(), "sub", "config")
	if _, err := Merge(fresh, []byte(stack), false); err != nil {
		t.Fatal(err)
	}
	if got, _ := clientcmd.LoadFromFile(fresh); got.CurrentContext != "lab" {
		t.Errorf("fresh file current %q", got.CurrentContext)
	}
	broken := filepath.Join(t.TempDir(), "config")
	os.WriteFile(broken, []byte("{not yaml"), 0o600)
	if _, err := Merge(broken, []byte(stack), false); err == nil {
		t.Error("merged into a broken kubeconfig")
	}
	if b, _ := os.ReadFile(broken); string(b) != "{not yaml" {
		t.Error("broken kubeconfig was changed")
	}
}
