package config

import (
	"fmt"
	"slices"
)

// TargetName is where a stack runs: the value of liftoff:target.
type TargetName string

// TargetSpec is what a target tells the config about itself: its name, the
// settings only it reads and how they are parsed, and which of the shared
// in-cluster choices it offers. Each target registers one (internal/target's
// registry does it), so the config never names a target.
type TargetSpec struct {
	Name TargetName
	// Summary says in a few words where such a stack runs, for init's
	// help and prompt ("a cluster you already have").
	Summary string
	// Default is the target init offers first.
	Default bool
	// Keys are the settings only this target reads; their Targets are
	// filled in when the spec is registered.
	Keys []Key
	// ClusterServices: the target runs the app's registry and volumes on a
	// cluster it does not buy from a cloud, and reads the registry and
	// storage settings (liftoff:registry, insecureRegistry,
	// registryPassword, storageClass); StorageClass is its default class.
	ClusterServices bool
	StorageClass    string
	// Databases and Caches are managed services the target offers besides
	// in-cluster and external; the first database is its default.
	Databases, Caches []string
	// Parse reads the target's own keys into its section of the config
	// (kept in Stack.Section); nil when it has none.
	Parse func(r *Reader, s *Stack) any
	// Missing lists the target's generated secrets (Key.Generated) the
	// stack does not have yet.
	Missing func(s *Stack) []string
	// Pins are the versions the target pins, by what they version, for
	// liftoff version ("k3s": "v1.34.2+k3s1").
	Pins map[string]string
}

// specs are the registered targets, filled at start-up (by package
// initialisation of the registry) and only read afterwards.
var specs struct {
	byName map[TargetName]TargetSpec
	order  []TargetName
}

// RegisterTarget adds a target's spec, at start-up: its keys join Keys,
// and Parse accepts its name. A name registered again (a registry built
// once more, as tests do) replaces its earlier spec; a key another target
// declared already panics (a programming error, at start-up).
func RegisterTarget(spec TargetSpec) {
	if specs.byName == nil {
		specs.byName = map[TargetName]TargetSpec{}
	}
	if _, again := specs.byName[spec.Name]; again {
		unregister(spec.Name)
	}
	for _, k := range spec.Keys {
		// A key several targets declare alike (a component's settings, as
		// metrics-server's) is one key that applies to each of them.
		if i := slices.IndexFunc(Keys, func(o Key) bool { return o.Name == k.Name }); i >= 0 {
			if o := Keys[i]; o.Targets == nil || o.clusterServices || o.Type != k.Type || o.Default != k.Default || o.Doc != k.Doc {
				panic(fmt.Sprintf("config: target %s declares key %s, which is already known", spec.Name, k.Name))
			}
			Keys[i].Targets = append(slices.Clone(Keys[i].Targets), spec.Name)
			continue
		}
		k.Targets = []TargetName{spec.Name}
		Keys = append(Keys, k)
	}
	if spec.ClusterServices {
		for i := range Keys {
			if Keys[i].clusterServices {
				Keys[i].Targets = append(Keys[i].Targets, spec.Name)
			}
		}
	}
	specs.byName[spec.Name] = spec
	specs.order = append(specs.order, spec.Name)
}

// unregister removes a target's spec and its keys.
func unregister(name TargetName) {
	kept := Keys[:0]
	for _, k := range Keys {
		if k.Targets != nil {
			k.Targets = slices.DeleteFunc(slices.Clone(k.Targets), func(t TargetName) bool { return t == name })
			if len(k.Targets) == 0 && !k.clusterServices {
				continue
			}
		}
		kept = append(kept, k)
	}
	Keys = kept
	delete(specs.byName, name)
	specs.order = slices.DeleteFunc(specs.order, func(t TargetName) bool { return t == name })
}

// Spec is the registered spec of a target.
func Spec(name TargetName) (TargetSpec, bool) {
	s, ok := specs.byName[name]
	return s, ok
}

// TargetNames are the registered targets, in registration order.
func TargetNames() []string {
	out := make([]string, len(specs.order))
	for i, n := range specs.order {
		out[i] = string(n)
	}
	return out
}

// DefaultTarget is the target init offers first ("" when none says so).
func DefaultTarget() string {
	for _, n := range specs.order {
		if specs.byName[n].Default {
			return string(n)
		}
	}
	return ""
}

// UsesClusterServices reports whether the stack's target runs its own
// registry and volumes (and a preview does not: its parent does).
func (s *Stack) UsesClusterServices() bool {
	spec, ok := Spec(s.Target)
	return ok && spec.ClusterServices && s.Preview == nil
}

func knownTarget(name TargetName) bool {
	return slices.Contains(TargetNames(), string(name))
}
