package charts

import (
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
