package config

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// AppSecretsKey holds the app's own environment variables.
const AppSecretsKey = "liftoff:appSecrets"

// AppSecret is one of the app's environment variables and when it last changed.
type AppSecret struct {
	Value   string    `json:"value"`
	Changed time.Time `json:"changed"`
}

// AppSecrets maps variable names to values; stored encrypted as JSON.
type AppSecrets map[string]AppSecret

// DecodeAppSecrets reads the stored form ("" is none).
func DecodeAppSecrets(s string) (AppSecrets, error) {
	out := AppSecrets{}
	if s == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("is not the JSON object liftoff secrets writes (%v)", err)
	}
	return out, nil
}

// Encode is the stored form.
func (a AppSecrets) Encode() string {
	b, _ := json.Marshal(a)
	return string(b)
}

// Env is what the pods see.
func (a AppSecrets) Env() map[string]string {
	out := make(map[string]string, len(a))
	for k, v := range a {
		out[k] = v.Value
	}
	return out
}

// Names lists the variables, sorted.
func (a AppSecrets) Names() []string {
	out := make([]string, 0, len(a))
	for k := range a {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
