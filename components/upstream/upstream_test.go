package upstream

import (
	"strings"
	"testing"
)

func TestSource(t *testing.T) {
	c := Chart{Name: "traefik", Repo: "https://traefik.github.io/charts", Version: "37.1.2"}
	for mirror, want := range map[string][2]string{
		"":                                {"traefik", "https://traefik.github.io/charts"},
		"https://charts.acme.dev/mirror":  {"traefik", "https://charts.acme.dev/mirror"},
		"oci://registry.acme.dev/charts/": {"oci://registry.acme.dev/charts/traefik", ""},
	} {
		if chart, repo := c.Source(mirror); chart != want[0] || repo != want[1] {
			t.Errorf("mirror %q: %s from %q, want %s from %q", mirror, chart, repo, want[0], want[1])
		}
	}
	for _, ok := range []string{"", "https://charts.acme.dev/liftoff", "http://10.0.0.5:8080", "oci://registry.acme.dev/charts"} {
		if err := CheckMirror(ok); err != nil {
			t.Errorf("CheckMirror(%q): %v", ok, err)
		}
	}
	for in, why := range map[string]string{"charts.acme.dev": "not a chart repository URL", "ftp://charts.acme.dev/x": "an HTTP Helm repository",
		"https://u:p@charts.acme.dev": "not a chart repository URL", "oci://": "not a chart repository URL"} {
		if err := CheckMirror(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("CheckMirror(%q): %v, want %q", in, err, why)
		}
	}
}
