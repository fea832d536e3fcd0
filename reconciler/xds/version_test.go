package xds

import (
	"maps"
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// cloneLists copies every list, as a fresh render of unchanged content
// does: same resources, new slices, so only a version can tell.
func cloneLists(m map[string][]*Resource) map[string][]*Resource {
	out := map[string][]*Resource{}
	for t, l := range m {
		out[t] = slices.Clone(l)
	}
	return out
}

// TestApplySkipsSameVersion: a fresh config with the Version the server
// already serves is skipped in O(1) (the served object stays, nothing is
// re-indexed), and a changed class whose Shared has an unchanged Version
// keeps the shared index it had instead of indexing the layer again.
func TestApplySkipsSameVersion(t *testing.T) {
	s := newTestServer(t)
	const a, b = "sidecar/default/a/v1", "sidecar/default/b/v1"
	layer := clusters(t, []string{"l1", "l2", "l3"}, "1")
	shared := &ClassConfig{Resources: layer, Version: "layer-1"}
	cfgA := &ClassConfig{Resources: clusters(t, []string{"a"}, "1"), Shared: shared, Version: "a-1"}
	cfgB := &ClassConfig{Resources: clusters(t, []string{"b"}, "1"), Shared: shared, Version: "b-1"}
	if err := s.Apply(Update{Revision: "r1", Classes: map[string]*ClassConfig{a: cfgA, b: cfgB}}); err != nil {
		t.Fatal(err)
	}
	viewsA := maps.Clone(s.classes[a].types)
	viewsB := maps.Clone(s.classes[b].types)

	// r2: a is unchanged (fresh objects, same versions); b's own part
	// changed, its layer did not.
	shared2 := &ClassConfig{Resources: cloneLists(layer), Version: "layer-1"}
	cfgA2 := &ClassConfig{Resources: cloneLists(cfgA.Resources), Shared: shared2, Version: "a-1"}
	cfgB2 := &ClassConfig{Resources: clusters(t, []string{"b"}, "2"), Shared: shared2, Version: "b-2"}
	if err := s.Apply(Update{Revision: "r2", Classes: map[string]*ClassConfig{a: cfgA2, b: cfgB2}}); err != nil {
		t.Fatal(err)
	}
	if s.classes[a].cfg != cfgA {
		t.Error("a class with an unchanged version was rebuilt")
	}
	for typ, v := range s.classes[a].types {
		if v != viewsA[typ] {
			t.Errorf("a %s: view rebuilt for an unchanged version", typ)
		}
	}
	if s.classes[b].cfg != cfgB2 {
		t.Fatal("a changed class was not applied")
	}
	for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
		now, was := s.classes[b].types[typ], viewsB[typ]
		if now.base != was.base {
			t.Errorf("b %s: the shared index was rebuilt though the layer's version held", typ)
		}
		if typ == resource.ClusterType && now.own == was.own {
			t.Errorf("b %s: own index not rebuilt after a change", typ)
		}
	}

	// r3: a new layer version is indexed.
	layer3 := clusters(t, []string{"l1", "l2", "l3"}, "3")
	cfgB3 := &ClassConfig{Resources: cfgB2.Resources, Shared: &ClassConfig{Resources: layer3, Version: "layer-3"}, Version: "b-3"}
	if err := s.Apply(Update{Revision: "r3", Classes: map[string]*ClassConfig{a: cfgA2, b: cfgB3}}); err != nil {
		t.Fatal(err)
	}
	if got := s.classes[b].types[resource.ClusterType].base.list[0]; got != layer3[resource.ClusterType][0] {
		t.Error("a new layer version was not indexed")
	}
	// Without versions, configs are compared by pointer only.
	bare := &ClassConfig{Resources: cloneLists(cfgA.Resources)}
	if err := s.Apply(Update{Revision: "r4", Classes: map[string]*ClassConfig{a: bare, b: cfgB3}}); err != nil {
		t.Fatal(err)
	}
	if s.classes[a].cfg != bare {
		t.Error("an unversioned config was taken for the served one")
	}
}
