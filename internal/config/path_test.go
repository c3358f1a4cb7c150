package config_test

import (
	"reflect"
	"testing"

	. "github.com/liftoff-dev/liftoff/internal/config"
)

func TestSplitPath(t *testing.T) {
	key, steps, err := SplitPath("nodes[1].host")
	if err != nil || key != "liftoff:nodes" || !reflect.DeepEqual(steps, []any{1, "host"}) {
		t.Fatalf("%s %v %v", key, steps, err)
	}
	if key, steps, _ := SplitPath("aws:region"); key != "aws:region" || steps != nil {
		t.Fatalf("%s %v", key, steps)
	}
	for _, bad := range []string{"nodes[x]", "nodes[0", "nodes..a"} {
		if _, _, err := SplitPath(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestSetPath(t *testing.T) {
	doc, err := SetPath("", []any{0, "host"}, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	doc, err = SetPath(doc, []any{0, "port"}, PathValue("2222"))
	if err != nil {
		t.Fatal(err)
	}
	if doc != `[{"host":"10.0.0.1","port":2222}]` {
		t.Errorf("got %s", doc)
	}
	if _, err := SetPath(doc, []any{5, "host"}, "x"); err == nil {
		t.Error("gap in list accepted")
	}
	// The merged value validates like any other.
	s, err := Parse("lab", Values{"liftoff:target": Plain("homelab"), "liftoff:nodes": Plain(`[{"host":"10.0.0.1","port":2222,"role":"server"}]`)})
	if err != nil || labOf(s).Nodes[0].Port != 2222 {
		t.Fatalf("%v %v", s, err)
	}
}
