package kubeconfig_test

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/liftoff-dev/liftoff/internal/target"
	"github.com/liftoff-dev/liftoff/internal/testenv"
	"github.com/liftoff-dev/liftoff/stacks"
)

const dbURL = "postgres://app:pw-in-plain@db.example.com:5432/app"

func mocks() *testenv.Mocks { return &testenv.Mocks{} }

// TestExternalEverything: no provider resource at all, only the stack's own component.
func TestExternalEverything(t *testing.T) {
	m := mocks()
	m.Run(t, "shortener", "dev", map[string]string{
		"liftoff:target": "kubeconfig", "liftoff:kubeconfig": "/k", "liftoff:registry": "127.0.0.1:5000/app",
		"liftoff:database": "external", "liftoff:databaseUrl": dbURL, "liftoff:cache": "none", "liftoff:observability": "false",
	}, stacks.Run, "liftoff:databaseUrl")
	for _, r := range m.Resources {
		if r.Custom || strings.HasPrefix(r.Type, "pulumi:providers:") {
			t.Errorf("declared %s %s: this configuration must need no provider", r.Type, r.Name)
		}
	}
	if len(m.OfType("liftoff:kubeconfig:Target")) != 1 {
		t.Errorf("resources: %v", m.Names())
	}
}

// TestInCluster: the defaults run registry, PostgreSQL, Valkey and observability in the cluster.
func TestInCluster(t *testing.T) {
	m := mocks()
	m.Run(t, "shortener", "dev", map[string]string{"liftoff:target": "kubeconfig", "liftoff:kubeconfig": "/k", "liftoff:context": "home", "liftoff:storageClass": "local-path"},
		stacks.Run)
	prov := m.Get(t, "pulumi:providers:kubernetes", "cluster")
	if v, _ := testenv.Lookup(prov.Inputs, "context"); v.StringValue() != "home" {
		t.Errorf("provider context: %v", v)
	}
	for _, typ := range []string{"liftoff:database:InCluster", "liftoff:cache:InCluster", "liftoff:registry:InCluster", "liftoff:observability:Observability"} {
		if len(m.OfType(typ)) != 1 {
			t.Errorf("no %s", typ)
		}
	}
	ns := m.Get(t, "kubernetes:core/v1:Namespace", "app-namespace")
	if v, _ := testenv.Lookup(ns.Inputs, "metadata.name"); v.StringValue() != "shortener" {
		t.Errorf("namespace %v", v)
	}
	env := m.Get(t, "kubernetes:core/v1:Secret", "app-env")
	data, _ := testenv.Lookup(env.Inputs, "stringData")
	_, hasDB := testenv.Lookup(env.Inputs, "stringData.DATABASE_URL")
	_, hasCache := testenv.Lookup(env.Inputs, "stringData.CACHE_URL")
	if !data.IsSecret() || !hasDB || !hasCache {
		t.Errorf("app secret: %s", testenv.Show(data))
	}
	pg := m.Get(t, "kubernetes:apps/v1:StatefulSet", "database")
	if v, _ := testenv.Lookup(pg.Inputs, "spec.volumeClaimTemplates"); !strings.Contains(testenv.Show(v), "local-path") {
		t.Errorf("postgres volume: %s", testenv.Show(v))
	}
	// A PostgreSQL still running initdb on a slow disk is never killed
	// half-way (a restarted init finds PG_VERSION and skips the app's
	// database): liveness counts only after a startup probe that waits as
	// long as the StatefulSet's 5-minute create, and no check gives up
	// after Kubernetes' default 1 s.
	probe := func(kind, field string) float64 {
		v, ok := testenv.Lookup(pg.Inputs, "spec.template.spec.containers.0."+kind+"."+field)
		if !ok || !v.IsNumber() {
			t.Fatalf("postgres %s.%s: %s", kind, field, testenv.Show(v))
		}
		return v.NumberValue()
	}
	if budget := probe("startupProbe", "periodSeconds") * probe("startupProbe", "failureThreshold"); budget < 300 {
		t.Errorf("postgres startup probe gives %v s, want the create's 300", budget)
	}
	for _, kind := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
		if probe(kind, "timeoutSeconds") < 5 {
			t.Errorf("postgres %s times out after %v s", kind, probe(kind, "timeoutSeconds"))
		}
	}
	svc := m.Get(t, "kubernetes:core/v1:Service", "registry")
	if v, _ := testenv.Lookup(svc.Inputs, "spec.type"); v.StringValue() != "NodePort" {
		t.Errorf("registry service type %v", v)
	}
	pull := m.Get(t, "kubernetes:core/v1:Secret", "registry-pull")
	if v, _ := testenv.Lookup(pull.Inputs, "type"); v.StringValue() != "kubernetes.io/dockerconfigjson" {
		t.Errorf("pull secret type %v", v)
	}
	for _, r := range m.Resources {
		if strings.Contains(testenv.Show(resource.NewObjectProperty(r.Inputs)), "pw-in-plain") {
			t.Errorf("%s %s holds a secret in plain text", r.Type, r.Name)
		}
	}
}

func TestExternalDatabaseIsSecret(t *testing.T) {
	m := mocks()
	m.Run(t, "shortener", "dev", map[string]string{"liftoff:target": "kubeconfig", "liftoff:kubeconfig": "/k", "liftoff:observability": "false",
		"liftoff:database": "external", "liftoff:databaseUrl": dbURL}, stacks.Run, "liftoff:databaseUrl")
	env := m.Get(t, "kubernetes:core/v1:Secret", "app-env")
	if data, _ := testenv.Lookup(env.Inputs, "stringData"); !data.ContainsSecrets() {
		t.Error("the configured DATABASE_URL went into the Secret in plain text")
	}
	if len(m.OfType("liftoff:database:InCluster")) != 0 {
		t.Error("in-cluster database with an external one configured")
	}
}

// TestTakeOwnership: every Kubernetes object the in-cluster stack declares
// is applied with force, so a run killed before it recorded an object, or a
// field edited by hand, does not stop the next up on a field conflict.
func TestTakeOwnership(t *testing.T) {
	m := mocks()
	m.Run(t, "shortener", "dev", map[string]string{"liftoff:target": "kubeconfig", "liftoff:kubeconfig": "/k", "liftoff:observability": "false"}, stacks.Run)
	n := 0
	for _, r := range m.Resources {
		if !r.Custom || !strings.HasPrefix(r.Type, "kubernetes:") || strings.HasPrefix(r.Type, "kubernetes:helm.sh/") {
			continue
		}
		n++
		ann, _ := testenv.Lookup(r.Inputs, "metadata.annotations")
		if !ann.IsObject() || ann.ObjectValue()["pulumi.com/patchForce"].StringValue() != "true" {
			t.Errorf("%s %s is not applied with force: annotations %v", r.Type, r.Name, ann)
		}
	}
	if n < 8 {
		t.Errorf("only %d Kubernetes objects declared: %v", n, m.Names())
	}
}

// TestMetricsServer: a stack that autoscales on a cluster without a metrics
// API (preflight's fact) gets metrics-server and its registration, in
// kube-system under liftoff's names, and nothing else: its app's namespace
// stays the deploy phase's. Without the fact (the cluster has one) nothing
// is declared in the cluster.
func TestMetricsServer(t *testing.T) {
	cfg := map[string]string{"liftoff:target": "kubeconfig", "liftoff:kubeconfig": "/k", "liftoff:registry": "127.0.0.1:5000/app",
		"liftoff:database": "external", "liftoff:databaseUrl": dbURL, "liftoff:cache": "none", "liftoff:observability": "false",
		"liftoff:autoscale": "2-6", "liftoff:metricsServerImage": "mirror.example.com/metrics-server:v0.8.0"}
	m := mocks()
	m.Run(t, "shortener", "dev", cfg, stacks.Targets.Program(nil, target.Facts{MetricsServer: true}), "liftoff:databaseUrl")
	if len(m.OfType("liftoff:metrics:MetricsServer")) != 1 || len(m.OfType("kubernetes:core/v1:Namespace")) != 0 || len(m.OfType("kubernetes:core/v1:Secret")) != 0 {
		t.Fatalf("resources: %v", m.Names())
	}
	api := m.Get(t, "kubernetes:apiregistration.k8s.io/v1:APIService", "metrics-server-apiservice")
	for path, want := range map[string]string{"metadata.name": "v1beta1.metrics.k8s.io", "spec.service.namespace": "kube-system",
		"spec.service.name": "liftoff-metrics-server"} {
		if v, _ := testenv.Lookup(api.Inputs, path); v.StringValue() != want {
			t.Errorf("APIService %s = %v, want %s", path, v, want)
		}
	}
	// Its owner, by which preflight tells this stack's from another's.
	if v, _ := testenv.Lookup(api.Inputs, "metadata.labels"); !v.IsObject() || v.ObjectValue()["liftoff.dev/stack"].StringValue() != "dev" {
		t.Errorf("APIService labels %v", v)
	}
	dep := m.Get(t, "kubernetes:apps/v1:Deployment", "metrics-server-deploy")
	if v, _ := testenv.Lookup(dep.Inputs, "spec.template.spec.containers"); !strings.Contains(testenv.Show(v), "mirror.example.com/metrics-server:v0.8.0") {
		t.Errorf("metrics-server runs %s", testenv.Show(v))
	}
	for _, r := range m.OfType("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole") {
		if v, _ := testenv.Lookup(r.Inputs, "metadata.name"); !strings.HasPrefix(v.StringValue(), "liftoff:") {
			t.Errorf("ClusterRole %v is not named as liftoff's", v)
		}
	}

	m = mocks()
	m.Run(t, "shortener", "dev", cfg, stacks.Targets.Program(nil, target.Facts{}), "liftoff:databaseUrl")
	for _, r := range m.Resources {
		if r.Custom {
			t.Errorf("declared %s %s on a cluster that has a metrics API", r.Type, r.Name)
		}
	}
}
