package config

import (
	"crypto/rand"
)

// Missing lists the generated secrets (Key.Generated) the stack needs and
// does not have yet: the in-cluster database's, registry's and Grafana's
// passwords, the in-cluster cache's, and the target's own (its spec's Missing), by what the config runs.
func Missing(s *Stack) []string {
	var out []string
	for _, g := range generated(s) {
		if g.needed && !g.have.IsSet() {
			out = append(out, g.key)
		}
	}
	if spec, ok := Spec(s.Target); ok && spec.Missing != nil && s.Preview == nil {
		out = append(out, spec.Missing(s)...)
	}
	return out
}

// generated are the secrets liftoff generates, whether s needs each, and
// where s keeps it.
func generated(s *Stack) []struct {
	key    string
	needed bool
	have   *Secret
} {
	return []struct {
		key    string
		needed bool
		have   *Secret
	}{
		{"liftoff:databasePassword", s.Database.Mode == "in-cluster", &s.Database.Password},
		{"liftoff:cachePassword", s.Cache.Mode == "in-cluster", &s.Cache.Password},
		{"liftoff:registryPassword", s.UsesClusterServices() && s.Registry.Repository == "", &s.Registry.Password},
		{"liftoff:grafanaPassword", s.Observability.Enabled, &s.Observability.GrafanaPassword},
	}
}

// GenerateSecret returns a new random secret of 32 letters and digits, as
// generatedSecret accepts (about 190 bits).
func GenerateSecret() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([]byte, 0, 32)
	buf := make([]byte, 64)
	for len(out) < 32 {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 248 && len(out) < 32 { // 248 = 4*62: no bias
				out = append(out, alphabet[int(c)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}
