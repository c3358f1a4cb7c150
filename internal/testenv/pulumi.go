package testenv

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	lconfig "github.com/liftoff-dev/liftoff/internal/config"
)

// Resource is one resource a Pulumi program declared under mocks.
type Resource struct {
	Type   string
	Name   string
	Custom bool
	Parent string
	// Provider is the provider reference ("urn::id") the resource was registered with.
	Provider string
	// Deps are the URNs the resource depends on explicitly (DependsOn).
	Deps   []string
	Inputs resource.PropertyMap
}

// Mocks records every resource a program registers. Custom resources get
// their inputs back as state, plus an id; MockState can add outputs.
type Mocks struct {
	mu        sync.Mutex
	Resources []Resource
	// MockState adds provider-computed outputs for a resource type.
	MockState func(typ, name string, inputs resource.PropertyMap) resource.PropertyMap
	// MockCall answers provider functions (data sources), by token.
	MockCall func(token string, args resource.PropertyMap) (resource.PropertyMap, error)
	// NoGenerated runs the program without the secrets liftoff generates
	// before every run (see RunErr).
	NoGenerated bool
}

// Generated is the stand-in for every secret liftoff generates before it
// runs a program: RunErr adds the ones config.Missing names, as liftoff up does.
const Generated = "generatedForTheTest0123456789abc"

// NewResource implements pulumi.MockResourceMonitor.
func (m *Mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	m.Resources = append(m.Resources, Resource{Type: args.TypeToken, Name: args.Name, Custom: args.Custom, Parent: string(args.RegisterRPC.GetParent()), Provider: args.Provider, Deps: args.RegisterRPC.GetDependencies(), Inputs: args.Inputs})
	m.mu.Unlock()
	state := args.Inputs.Copy()
	if m.MockState != nil {
		for k, v := range m.MockState(args.TypeToken, args.Name, args.Inputs) {
			state[k] = v
		}
	}
	return args.Name + "-id", state, nil
}

// Call implements pulumi.MockResourceMonitor.
func (m *Mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	if m.MockCall != nil {
		return m.MockCall(args.Token, args.Args)
	}
	return resource.PropertyMap{}, nil
}

// Run runs program under the mocks as project/stack, failing the test on error.
func (m *Mocks) Run(t testing.TB, project, stack string, config map[string]string, program pulumi.RunFunc, secretKeys ...string) {
	t.Helper()
	if err := m.RunErr(project, stack, config, program, secretKeys...); err != nil {
		t.Fatalf("program failed under mocks: %v", err)
	}
}

// RunErr is Run that returns the program's error.
func (m *Mocks) RunErr(project, stack string, config map[string]string, program pulumi.RunFunc, secretKeys ...string) error {
	opts := []pulumi.RunOption{pulumi.WithMocks(project, stack, m)}
	if config != nil && !m.NoGenerated {
		vals := lconfig.Values{}
		for k, v := range config {
			vals[k] = lconfig.Value{Text: v, Secret: slices.Contains(secretKeys, k), Known: true}
		}
		if cfg, err := lconfig.Parse(stack, vals); err == nil {
			withGenerated := maps.Clone(config)
			for _, k := range lconfig.Missing(cfg) {
				withGenerated[k] = Generated
				secretKeys = append(secretKeys, k)
			}
			config = withGenerated
		}
	}
	if config != nil {
		opts = append(opts, func(info *pulumi.RunInfo) { info.Config, info.ConfigSecretKeys = config, secretKeys })
	}
	return pulumi.RunErr(program, opts...)
}

// OfType returns the resources of a type, in registration order.
func (m *Mocks) OfType(typ string) []Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Resource
	for _, r := range m.Resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

// Get returns the one resource of a type and name, failing the test otherwise.
func (m *Mocks) Get(t testing.TB, typ, name string) Resource {
	t.Helper()
	for _, r := range m.OfType(typ) {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %s named %s among: %s", typ, name, strings.Join(m.Names(), ", "))
	return Resource{}
}

// Names lists type::name of every resource, sorted.
func (m *Mocks) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.Resources {
		out = append(out, r.Type+"::"+r.Name)
	}
	sort.Strings(out)
	return out
}

// Graph renders the resource graph, one line per resource with the chosen
// input keys, for golden files.
func (m *Mocks) Graph(keys func(typ string) []string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	lines := make([]string, 0, len(m.Resources))
	for _, r := range m.Resources {
		var props []string
		for _, k := range keys(r.Type) {
			v, ok := Lookup(r.Inputs, k)
			if !ok {
				continue
			}
			props = append(props, fmt.Sprintf("%s=%s", k, Show(v)))
		}
		lines = append(lines, fmt.Sprintf("%s %s %s", r.Type, r.Name, strings.Join(props, " ")))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// Lookup reads a dotted path ("tags.Name", "scalingConfig.minSize",
// "spec.rules.0.host") from inputs, through secrets.
func Lookup(m resource.PropertyMap, path string) (resource.PropertyValue, bool) {
	var cur resource.PropertyValue = resource.NewObjectProperty(m)
	for _, part := range strings.Split(path, ".") {
		for cur.IsSecret() {
			cur = cur.SecretValue().Element
		}
		if i, err := strconv.Atoi(part); err == nil && cur.IsArray() {
			if i < 0 || i >= len(cur.ArrayValue()) {
				return resource.PropertyValue{}, false
			}
			cur = cur.ArrayValue()[i]
			continue
		}
		if !cur.IsObject() {
			return resource.PropertyValue{}, false
		}
		v, ok := cur.ObjectValue()[resource.PropertyKey(part)]
		if !ok {
			return resource.PropertyValue{}, false
		}
		cur = v
	}
	return cur, true
}

// Show renders a property value compactly and deterministically; secrets as [secret].
func Show(v resource.PropertyValue) string {
	switch {
	case v.IsSecret():
		return "[secret]"
	case v.IsString():
		return v.StringValue()
	case v.IsNumber():
		return fmt.Sprint(v.NumberValue())
	case v.IsBool():
		return fmt.Sprint(v.BoolValue())
	case v.IsNull():
		return "null"
	case v.IsArray():
		parts := make([]string, 0, len(v.ArrayValue()))
		for _, e := range v.ArrayValue() {
			parts = append(parts, Show(e))
		}
		return "[" + strings.Join(parts, ",") + "]"
	case v.IsObject():
		keys := v.ObjectValue().StableKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, string(k)+":"+Show(v.ObjectValue()[k]))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case v.IsComputed() || v.IsOutput():
		return "<computed>"
	}
	return v.String()
}
