package charts

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint/support"
	"sigs.k8s.io/yaml"
)

func load(t *testing.T) *chart.Chart {
	t.Helper()
	var files []*loader.BufferedFile
	fs.WalkDir(Shortener, "shortener", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := Shortener.ReadFile(p)
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, "shortener/"), Data: b})
		return nil
	})
	c, err := loader.LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var good = map[string]any{"slot": "green", "image": map[string]any{"repository": "127.0.0.1:5000/app", "digest": "sha256:" + strings.Repeat("a", 64)}}

func render(t *testing.T, c *chart.Chart, vals map[string]any, apis ...string) (map[string]string, error) {
	t.Helper()
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(caps.APIVersions, apis...)
	v, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: "shortener-green", Namespace: "shop", IsInstall: true}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(c, v)
}

func TestLint(t *testing.T) {
	l := action.NewLint()
	l.Strict = true
	res := l.Run([]string{"shortener"}, good)
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev { // INFO (e.g. "icon is recommended") is advice, not a finding
			t.Errorf("helm lint: %s", m)
		}
	}
	if len(res.Errors) > 0 {
		t.Errorf("helm lint errors: %v", res.Errors)
	}
}

func TestRender(t *testing.T) {
	c := load(t)
	out, err := render(t, c, good)
	if err != nil {
		t.Fatal(err)
	}
	dep := out["shortener/templates/deployment.yaml"]
	var d struct {
		Metadata struct{ Name string }
		Spec     struct {
			Replicas int
			Selector struct{ MatchLabels map[string]string }
			Template struct {
				Metadata struct{ Labels map[string]string }
				Spec     struct {
					SecurityContext map[string]any
					Containers      []struct {
						Image           string
						SecurityContext struct {
							AllowPrivilegeEscalation bool
							ReadOnlyRootFilesystem   bool
							Capabilities             struct{ Drop []string }
						}
						ReadinessProbe struct{ HTTPGet struct{ Path string } }
						LivenessProbe  struct{ HTTPGet struct{ Path string } }
					}
				}
			}
		}
	}
	if err := yaml.Unmarshal([]byte(dep), &d); err != nil {
		t.Fatal(err)
	}
	ctr := d.Spec.Template.Spec.Containers[0]
	if d.Metadata.Name != "shortener-green" || d.Spec.Replicas != 2 || d.Spec.Selector.MatchLabels["liftoff.dev/slot"] != "green" ||
		ctr.Image != "127.0.0.1:5000/app@sha256:"+strings.Repeat("a", 64) || ctr.SecurityContext.AllowPrivilegeEscalation ||
		!ctr.SecurityContext.ReadOnlyRootFilesystem || ctr.SecurityContext.Capabilities.Drop[0] != "ALL" ||
		ctr.ReadinessProbe.HTTPGet.Path != "/ready" || ctr.LivenessProbe.HTTPGet.Path != "/health" ||
		d.Spec.Template.Spec.SecurityContext["runAsNonRoot"] != true || d.Spec.Template.Metadata.Labels["app.kubernetes.io/version"] != "aaaaaaaaaaaa" {
		t.Errorf("deployment:\n%s", dep)
	}
	for _, want := range []string{"pdb.yaml", "networkpolicy.yaml"} {
		if strings.TrimSpace(out["shortener/templates/"+want]) == "" {
			t.Errorf("%s not rendered", want)
		}
	}
	if strings.TrimSpace(out["shortener/templates/metrics-service.yaml"]) != "" || strings.TrimSpace(out["shortener/templates/hpa.yaml"]) != "" {
		t.Error("ServiceMonitor without its CRD, or HPA when disabled")
	}
	out, err = render(t, c, good, "monitoring.coreos.com/v1/ServiceMonitor")
	if err != nil || !strings.Contains(out["shortener/templates/metrics-service.yaml"], "kind: ServiceMonitor") {
		t.Errorf("ServiceMonitor with the CRD: %v", err)
	}
	// The slot's release labels every series of its pods (the alerts' last_release).
	released := map[string]any{"release": map[string]any{"digest": "sha256:c0ffee", "by": "ci:7", "at": "2026-12-03T10:00:00Z"}}
	for k, v := range good {
		released[k] = v
	}
	out, err = render(t, c, released, "monitoring.coreos.com/v1/ServiceMonitor")
	for _, want := range []string{"targetLabel: release_digest\n          replacement: \"sha256:c0ffee\"", "targetLabel: released_by\n          replacement: \"ci:7\"",
		"targetLabel: released_at\n          replacement: \"2026-12-03T10:00:00Z\""} {
		if err != nil || !strings.Contains(out["shortener/templates/metrics-service.yaml"], want) {
			t.Errorf("ServiceMonitor of a release lacks %q: %v\n%s", want, err, out["shortener/templates/metrics-service.yaml"])
		}
	}
	parked := map[string]any{"replicas": 0, "image": good["image"]}
	out, _ = render(t, c, parked)
	if strings.TrimSpace(out["shortener/templates/pdb.yaml"]) != "" {
		t.Error("a parked slot keeps a PDB")
	}
}

// TestSchema: bad values fail at render time, naming the field.
func TestSchema(t *testing.T) {
	c := load(t)
	cases := []struct {
		vals  map[string]any
		field string
	}{
		{map[string]any{"slot": "purple", "image": good["image"]}, "slot"},
		{map[string]any{"replicas": -1, "image": good["image"]}, "replicas"},
		{map[string]any{"replicas": "two", "image": good["image"]}, "replicas"},
		{map[string]any{"image": map[string]any{"repository": "r.io/app", "digest": "sha256:short"}}, "digest"},
		{map[string]any{"image": map[string]any{"repository": "r.io/app"}}, "image"},
		{map[string]any{"image": good["image"], "app": "Bad_Name"}, "app"},
		{map[string]any{"image": good["image"], "bogus": true}, "bogus"},
		{map[string]any{"image": good["image"], "env": map[string]any{"secretName": ""}}, "secretName"},
	}
	for _, tc := range cases {
		vals, err := chartutil.CoalesceValues(c, tc.vals)
		if err == nil {
			err = chartutil.ValidateAgainstSchema(c, vals)
		}
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%v: error %v does not name %s", tc.vals, err, tc.field)
		}
	}
	vals, _ := chartutil.CoalesceValues(c, good)
	if err := chartutil.ValidateAgainstSchema(c, vals); err != nil {
		t.Errorf("good values rejected: %v", err)
	}
}

// TestHardening: the shutdown budget follows the grace period (and a grace
// period too short for it fails naming the field), the limits reach the
// container, and the NetworkPolicy admits the ingress controller's
// namespace, the hosts outside the pod ranges and the scrapers, nothing else.
func TestHardening(t *testing.T) {
	c := load(t)
	with := func(extra map[string]any) map[string]any {
		v := map[string]any{"slot": "green", "image": good["image"]}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	out, err := render(t, c, with(map[string]any{"terminationGracePeriodSeconds": 60, "shutdownDelaySeconds": 5}))
	if err != nil {
		t.Fatal(err)
	}
	dep := out["shortener/templates/deployment.yaml"]
	for _, want := range []string{"name: FLUSH_TIMEOUT\n              value: \"40s\"", "name: RATE_LIMIT_WRITES\n              value: \"10\"", "name: METRICS_ADDR\n              value: \":9091\""} {
		if !strings.Contains(dep, want) {
			t.Errorf("deployment lacks %q:\n%s", want, dep)
		}
	}
	if _, err := render(t, c, with(map[string]any{"terminationGracePeriodSeconds": 20, "shutdownDelaySeconds": 5})); err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSeconds") {
		t.Errorf("a grace period too short to flush: %v", err)
	}

	np := func(vals map[string]any) (in []map[string]any) {
		t.Helper()
		out, err := render(t, c, with(map[string]any{"networkPolicy": vals}))
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Spec struct{ Ingress []map[string]any }
		}
		if err := yaml.Unmarshal([]byte(out["shortener/templates/networkpolicy.yaml"]), &p); err != nil {
			t.Fatal(err)
		}
		return p.Spec.Ingress
	}
	open := np(map[string]any{"enabled": true})
	if len(open) != 2 || open[0]["from"] != nil {
		t.Errorf("without ingress namespaces the app port is open to the cluster, the metrics port is not: %v", open)
	}
	closed := np(map[string]any{"enabled": true, "ingressNamespaces": []any{"kube-system"},
		"hostBlocks": []any{map[string]any{"cidr": "0.0.0.0/0", "except": []any{"10.42.0.0/16"}}}})
	app, _ := json.Marshal(closed[0]["from"])
	metrics, _ := json.Marshal(closed[1]["from"])
	for _, want := range []string{`{"podSelector":{}}`, `"values":["kube-system"]`, `{"ipBlock":{"cidr":"0.0.0.0/0","except":["10.42.0.0/16"]}}`} {
		if !strings.Contains(string(app), want) {
			t.Errorf("app port sources %s lack %s", app, want)
		}
	}
	if !strings.Contains(string(metrics), `"values":["observability"]`) || strings.Contains(string(metrics), "podSelector") {
		t.Errorf("metrics port sources: %s", metrics)
	}
}
