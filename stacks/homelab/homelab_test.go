package homelab_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/liftoff-dev/liftoff/components/k3s"
	"github.com/liftoff-dev/liftoff/internal/config"
	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/stacks"
)

const k3sKubeconfig = `apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority-data: Y2E=, server: "https://127.0.0.1:6443"}
  name: default
contexts:
- context: {cluster: default, user: default}
  name: default
current-context: default
users:
- name: default
  user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}
`

func mocks() *testenv.Mocks {
	return &testenv.Mocks{MockState: func(typ, name string, in resource.PropertyMap) resource.PropertyMap {
		switch {
		case typ == "command:remote:Command" && strings.HasSuffix(name, "-kubeconfig"):
			return resource.PropertyMap{"stdout": resource.MakeSecret(resource.NewStringProperty(k3sKubeconfig))}
		}
		return nil
	}}
}

func homelabConfig(t *testing.T, extra map[string]string) map[string]string {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	for _, f := range []string{key, filepath.Join(dir, "k3s"), filepath.Join(dir, "images.tar")} {
		if err := os.WriteFile(f, []byte("content of "+filepath.Base(f)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := map[string]string{"liftoff:target": "homelab",
		"liftoff:nodes": `[{"host":"10.0.0.1","key":"` + key + `","role":"server"},{"host":"10.0.0.2","key":"` + key + `","role":"server"},` +
			`{"host":"10.0.0.3","key":"` + key + `","role":"server"},{"host":"10.0.0.4","user":"pi","key":"` + key + `","role":"agent"},{"host":"10.0.0.5","key":"` + key + `","role":"agent"}]`,
		"liftoff:airgapBinary": filepath.Join(dir, "k3s"), "liftoff:airgapImages": filepath.Join(dir, "images.tar"),
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func TestProgram(t *testing.T) {
	vals := homelabConfig(t, map[string]string{"liftoff:sudoPassword": "sudo-pw-plain"})
	// The plain pulumi CLI runs the program without liftoff's preflight:
	// no host key verified, so no install may be declared (pulumi-command
	// would trust whoever answers).
	if err := mocks().RunErr("shortener", "lab", vals, stacks.Run, "liftoff:sudoPassword"); err == nil || !strings.Contains(err.Error(), "no verified host key") {
		t.Errorf("plain pulumi without host keys: %v", err)
	}
	m := mocks()
	m.Run(t, "shortener", "lab", vals, func(ctx *pulumi.Context) error {
		cfg, err := config.Parse(ctx.Stack(), target.Values(ctx))
		if err != nil {
			return err
		}
		return stacks.Targets.Program(cfg, allKeys)(ctx)
	}, "liftoff:sudoPassword")

	installs := map[string]testenv.Resource{}
	for _, r := range m.OfType("command:remote:Command") {
		installs[r.Name] = r
	}
	if len(installs) != 6 || len(m.OfType("command:remote:CopyToRemote")) != 10 {
		t.Fatalf("resources: %v", m.Names())
	}
	urn := func(name string) string {
		return "urn:pulumi:lab::shortener::liftoff:homelab:Target$liftoff:k3s:Cluster$command:remote:Command::" + name
	}
	// Servers one at a time, in config order; agents together after the last server.
	for name, dep := range map[string]string{"k3s-server-1": "k3s-server-0", "k3s-server-2": "k3s-server-1", "k3s-agent-3": "k3s-server-2", "k3s-agent-4": "k3s-server-2"} {
		if !slices.Contains(installs[name].Deps, urn(dep)) {
			t.Errorf("%s does not wait for %s: %v", name, dep, installs[name].Deps)
		}
	}
	if slices.Contains(installs["k3s-agent-4"].Deps, urn("k3s-agent-3")) {
		t.Error("agents upgrade one after another; they only need the servers")
	}
	first := installs["k3s-server-0"]
	stdin, _ := testenv.Lookup(first.Inputs, "stdin")
	if !stdin.ContainsSecrets() {
		t.Error("install stdin (token, sudo password) is not a secret")
	}
	for _, r := range m.Resources {
		if s := testenv.Show(resource.NewObjectProperty(r.Inputs)); strings.Contains(s, "sudo-pw-plain") || strings.Contains(s, "content of id_ed25519") {
			t.Errorf("%s %s holds a secret in plain text", r.Type, r.Name)
		}
	}
	if c, _ := testenv.Lookup(first.Inputs, "create"); c.StringValue() != "bash -s" {
		t.Errorf("root create %v", c)
	}
	if c, _ := testenv.Lookup(installs["k3s-agent-3"].Inputs, "create"); c.StringValue() != "sudo -S -p '' bash -s" {
		t.Errorf("pi create %v", c)
	}
	if d, _ := testenv.Lookup(first.Inputs, "delete"); !strings.Contains(d.StringValue(), "k3s-uninstall.sh") {
		t.Errorf("delete %v", d)
	}
	// The kubeconfig is fetched from the first server, rewritten, and a secret.
	prov := m.Get(t, "pulumi:providers:kubernetes", "k3s")
	kc, _ := testenv.Lookup(prov.Inputs, "kubeconfig")
	if !kc.ContainsSecrets() {
		t.Error("kubeconfig is not a secret")
	}
	for kc.IsSecret() {
		kc = kc.SecretValue().Element
	}
	if s := kc.StringValue(); !strings.Contains(s, "server: https://10.0.0.1:6443") || !strings.Contains(s, "current-context: lab") {
		t.Errorf("kubeconfig:\n%s", s)
	}
	// In the cluster: the kubeconfig target's pieces, on local-path.
	for _, typ := range []string{"liftoff:database:InCluster", "liftoff:cache:InCluster", "liftoff:registry:InCluster", "liftoff:observability:Observability"} {
		if len(m.OfType(typ)) != 1 {
			t.Errorf("no %s", typ)
		}
	}
	pg := m.Get(t, "kubernetes:apps/v1:StatefulSet", "database")
	if v, _ := testenv.Lookup(pg.Inputs, "spec.volumeClaimTemplates"); !strings.Contains(testenv.Show(v), "local-path") {
		t.Errorf("postgres volume: %s", testenv.Show(v))
	}
}

func TestImportModeRefused(t *testing.T) {
	m := mocks()
	err := m.RunErr("shortener", "lab", homelabConfig(t, map[string]string{"liftoff:imageDelivery": "import"}), stacks.Run)
	if err == nil || !strings.Contains(err.Error(), "imageDelivery") || len(m.Resources) != 0 {
		t.Fatalf("err = %v, resources %v", err, m.Names())
	}
}

func TestMissingKey(t *testing.T) {
	m := mocks()
	c := homelabConfig(t, nil)
	c["liftoff:nodes"] = `[{"host":"10.0.0.1","key":"/nonexistent/key","role":"server"}]`
	err := m.RunErr("shortener", "lab", c, stacks.Run)
	if err == nil || !strings.Contains(err.Error(), "key of 10.0.0.1") {
		t.Fatalf("err = %v", err)
	}
}

// TestHostKeysPinned: the keys preflight verified go into every connection
// and into the stack's state.
func TestHostKeysPinned(t *testing.T) {
	vals := config.Values{}
	for k, v := range homelabConfig(t, nil) {
		vals[k] = config.Plain(v)
	}
	for _, k := range []string{"liftoff:k3sToken", "liftoff:databasePassword", "liftoff:registryPassword", "liftoff:cachePassword", "liftoff:grafanaPassword"} {
		vals[k] = config.SecretValue(testenv.Generated) // what liftoff up generates first
	}
	cfg, err := config.Parse("lab", vals)
	if err != nil {
		t.Fatal(err)
	}
	facts := target.Facts{HostKeys: map[string]string{"10.0.0.1:22": "ssh-ed25519 AAAAfirst", "10.0.0.2:22": "ssh-ed25519 AAAAsecond",
		"10.0.0.3:22": "ssh-ed25519 AAAAthird", "10.0.0.4:22": "ssh-ed25519 AAAAagent", "10.0.0.5:22": "ssh-ed25519 AAAAfifth"}}
	m := mocks()
	m.Run(t, "shortener", "lab", nil, stacks.Targets.Program(cfg, facts))
	for name, want := range map[string]string{"k3s-server-0": "ssh-ed25519 AAAAfirst", "k3s-agent-3": "ssh-ed25519 AAAAagent", "k3s-kubeconfig": "ssh-ed25519 AAAAfirst"} {
		r := m.Get(t, "command:remote:Command", name)
		if v, _ := testenv.Lookup(r.Inputs, "connection.hostKey"); v.StringValue() != want {
			t.Errorf("%s connection host key %v, want %s", name, v, want)
		}
	}
	if d, _ := testenv.Lookup(m.Get(t, "command:remote:Command", "k3s-agent-3").Inputs, "delete"); d.StringValue() != k3s.UninstallCommand("pi", false) {
		t.Errorf("delete command %q is not the tested uninstall command", d.StringValue())
	}
}

// allKeys are verified host keys for homelabConfig's five nodes, as
// preflight hands them to the program.
var allKeys = target.Facts{HostKeys: map[string]string{"10.0.0.1:22": "ssh-ed25519 AAAA1", "10.0.0.2:22": "ssh-ed25519 AAAA2",
	"10.0.0.3:22": "ssh-ed25519 AAAA3", "10.0.0.4:22": "ssh-ed25519 AAAA4", "10.0.0.5:22": "ssh-ed25519 AAAA5"}}
