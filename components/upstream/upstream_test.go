package upstream

import "testing"

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
}
