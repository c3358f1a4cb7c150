package preview_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/stacks"
)

// parentOutputs stands in for what the parent stack recorded; keys in
// secret come back as secrets, as the engine returns them.
func mocks(outputs map[string]any, secret ...string) *testenv.Mocks {
	return &testenv.Mocks{MockState: func(typ, name string, in resource.PropertyMap) resource.PropertyMap {
		switch typ {
		case "pulumi:pulumi:StackReference":
			outs := resource.NewPropertyMapFromMap(outputs)
			for _, k := range secret {
				outs[resource.PropertyKey(k)] = resource.MakeSecret(outs[resource.PropertyKey(k)])
			}
			return resource.PropertyMap{"outputs": resource.NewObjectProperty(outs)}
		}
		return nil
	}}
}

func str(t *testing.T, r testenv.Resource, path string) string {
	t.Helper()
	v, ok := testenv.Lookup(r.Inputs, path)
	if !ok {
		t.Fatalf("%s %s has no %s", r.Type, r.Name, path)
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v.StringValue()
}

// TestOnParentCluster: a preview of a homelab-like parent (kubeconfig
// content, an in-cluster registry with credentials, a preview domain behind
// TLS) reads the parent by its project-qualified name and declares, on the
// parent's cluster, only its own namespace, database, cache, Secret, pull
// secret and Ingress: no cluster, registry or observability of its own.
func TestOnParentCluster(t *testing.T) {
	m := mocks(map[string]any{
		"target": "homelab", "kubeconfigContent": "apiVersion: v1\nkind: Config\n", "context": "lab",
		"registry": "localhost:30500/shortener", "registryInsecure": true, "registryUsername": "liftoff", "registryPassword": "s3cret-pw",
		"storageClass": "local-path", "ingressClass": "traefik", "previewDomain": "preview.sho.rt", "url": "https://sho.rt",
		"grafana": "observability/grafana:80",
	}, "kubeconfigContent", "registryPassword")
	m.Run(t, "shop", "pr-42", map[string]string{"liftoff:target": "homelab", "liftoff:previewOf": "prod"}, stacks.Run)

	ref := m.Get(t, "pulumi:pulumi:StackReference", "parent")
	if got := str(t, ref, "name"); got != "organization/shop/prod" {
		t.Errorf("stack reference name %q", got)
	}
	prov := m.Get(t, "pulumi:providers:kubernetes", "parent-cluster")
	if v, _ := testenv.Lookup(prov.Inputs, "kubeconfig"); !v.IsSecret() {
		t.Error("the parent's kubeconfig content went to the provider in plain text")
	}
	if str(t, prov, "context") != "lab" {
		t.Errorf("provider context %q", str(t, prov, "context"))
	}
	ns := m.Get(t, "kubernetes:core/v1:Namespace", "app-namespace")
	labels, _ := testenv.Lookup(ns.Inputs, "metadata.labels")
	if str(t, ns, "metadata.name") != "shortener-pr-42" || labels.ObjectValue()["liftoff.dev/preview-of"].StringValue() != "prod" {
		t.Errorf("namespace: %s", testenv.Show(resource.NewObjectProperty(ns.Inputs)))
	}
	for _, typ := range []string{"liftoff:database:InCluster", "liftoff:cache:InCluster"} {
		if len(m.OfType(typ)) != 1 {
			t.Errorf("no %s", typ)
		}
	}
	pg := m.Get(t, "kubernetes:apps/v1:StatefulSet", "database")
	if str(t, pg, "metadata.namespace") != "shortener-pr-42" {
		t.Errorf("database in %s", str(t, pg, "metadata.namespace"))
	}
	if v, _ := testenv.Lookup(pg.Inputs, "spec.volumeClaimTemplates"); !strings.Contains(testenv.Show(v), "local-path") {
		t.Errorf("database volume not on the parent's storage class: %s", testenv.Show(v))
	}
	pull := m.Get(t, "kubernetes:core/v1:Secret", "registry-pull")
	data, _ := testenv.Lookup(pull.Inputs, "stringData")
	doc := data.SecretValue().Element.ObjectValue()[".dockerconfigjson"]
	if str(t, pull, "metadata.namespace") != "shortener-pr-42" || !data.IsSecret() || !strings.Contains(doc.StringValue(), `"localhost:30500"`) {
		t.Errorf("pull secret: %s", testenv.Show(resource.NewObjectProperty(pull.Inputs)))
	}
	ing := m.Get(t, "kubernetes:networking.k8s.io/v1:Ingress", "app-ingress")
	if str(t, ing, "spec.rules.0.host") != "pr-42.preview.sho.rt" || str(t, ing, "spec.ingressClassName") != "traefik" ||
		str(t, ing, "metadata.namespace") != "shortener-pr-42" {
		t.Errorf("ingress: %s", testenv.Show(resource.NewObjectProperty(ing.Inputs)))
	}
	for _, typ := range []string{"liftoff:observability:Observability", "liftoff:registry:InCluster", "liftoff:k3s:Cluster"} {
		if len(m.OfType(typ)) != 0 {
			t.Errorf("a preview declared its own %s", typ)
		}
	}
	for _, r := range m.Resources {
		if s := testenv.Show(resource.NewObjectProperty(r.Inputs)); strings.Contains(s, "s3cret-pw") {
			t.Errorf("%s %s holds the registry password in plain text", r.Type, r.Name)
		}
	}
}

// TestNothingToDeclare: with an external database, no cache, a registry
// without credentials and no preview domain, a preview declares only the
// reference: the deploy phase writes its namespace and Secret.
func TestNothingToDeclare(t *testing.T) {
	m := mocks(map[string]any{"target": "kubeconfig", "kubeconfig": "/home/ci/.kube/config", "context": "prod", "registry": "ghcr.io/acme/shortener", "previewDomain": ""})
	m.Run(t, "shop", "pr-7", map[string]string{"liftoff:target": "kubeconfig", "liftoff:previewOf": "prod",
		"liftoff:database": "external", "liftoff:databaseUrl": "postgres://app:pw@db:5432/pr7", "liftoff:cache": "none"}, stacks.Run, "liftoff:databaseUrl")
	for _, r := range m.Resources {
		if r.Type != "pulumi:pulumi:StackReference" && (r.Custom || strings.HasPrefix(r.Type, "pulumi:providers:")) {
			t.Errorf("declared %s %s", r.Type, r.Name)
		}
	}
}

// TestParentNeverUp: a parent without outputs is refused with the way out.
func TestParentNeverUp(t *testing.T) {
	m := mocks(map[string]any{})
	err := m.RunErr("shop", "pr-9", map[string]string{"liftoff:target": "kubeconfig", "liftoff:previewOf": "prod"}, stacks.Run)
	if err == nil || !strings.Contains(err.Error(), "liftoff up -s prod") {
		t.Fatalf("err = %v", err)
	}
	if n := len(m.OfType("kubernetes:core/v1:Namespace")); n != 0 {
		t.Errorf("declared %d namespaces before refusing", n)
	}
}

// TestHandedOff: with what liftoff read of the parent before the run (its
// plain outputs, and the preview's own kubeconfig and registry login in
// place of the parent's secrets), the program declares no StackReference,
// so the engine never opens the parent's state; the preview's own
// credentials reach the provider and the pull secret only as secrets.
func TestHandedOff(t *testing.T) {
	h := &target.Handoff{Parent: "prod", Values: map[string]any{
		"target": "homelab", "kubeconfigContent": "apiVersion: v1\nkind: Config\n# previews' own\n", "context": "previews",
		"registry": "localhost:30500/shortener", "registryInsecure": true, "registryUsername": "preview", "registryPassword": "own-pw",
		"storageClass": "local-path",
	}, Secret: map[string]bool{"kubeconfigContent": true, "registryPassword": true}}
	vals := map[string]string{"liftoff:target": "homelab", "liftoff:previewOf": "prod", "liftoff:previewKubeconfig": "/ci/preview.kubeconfig", "liftoff:previewContext": "previews"}
	cv := config.Values{}
	for k, v := range vals {
		cv[k] = config.Plain(v)
	}
	cfg, err := config.Parse("pr-42", cv)
	if err != nil {
		t.Fatal(err)
	}
	m := mocks(nil)
	m.Run(t, "shop", "pr-42", vals, stacks.Targets.Program(cfg, target.Facts{Parent: h}))
	if refs := m.OfType("pulumi:pulumi:StackReference"); len(refs) != 0 {
		t.Errorf("a handed-off preview declared a StackReference: %+v", refs)
	}
	prov := m.Get(t, "pulumi:providers:kubernetes", "parent-cluster")
	if v, _ := testenv.Lookup(prov.Inputs, "kubeconfig"); !v.IsSecret() || !strings.Contains(v.SecretValue().Element.StringValue(), "previews' own") {
		t.Errorf("provider kubeconfig: %s", testenv.Show(v))
	}
	if str(t, prov, "context") != "previews" {
		t.Errorf("provider context %q", str(t, prov, "context"))
	}
	pull := m.Get(t, "kubernetes:core/v1:Secret", "registry-pull")
	data, _ := testenv.Lookup(pull.Inputs, "stringData")
	doc := data.SecretValue().Element.ObjectValue()[".dockerconfigjson"].StringValue()
	if !data.IsSecret() || !strings.Contains(doc, `"username":"preview"`) {
		t.Errorf("pull secret: %s", doc)
	}
	for _, r := range m.Resources {
		if s := testenv.Show(resource.NewObjectProperty(r.Inputs)); strings.Contains(s, "own-pw") {
			t.Errorf("%s %s holds the registry password in plain text", r.Type, r.Name)
		}
	}
}
