package reconciler

import (
	"testing"

	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// TestReuse: an unchanged class keeps its previous object, a changed class
// with an unchanged layer gets the previous layer (one copy for the
// classes of a service's versions), and a new layer is taken as rendered.
func TestReuse(t *testing.T) {
	layer1 := &xds.ClassConfig{Version: "L1"}
	prev := xds.Update{Revision: "r1", Classes: map[string]*xds.ClassConfig{
		"a": {Shared: layer1, Version: "a1"},
		"b": {Shared: layer1, Version: "b1"},
	}}
	freshLayer := &xds.ClassConfig{Version: "L1"}
	b2 := &xds.ClassConfig{Shared: freshLayer, Version: "b2"}
	c := &xds.ClassConfig{Shared: &xds.ClassConfig{Version: "L2"}, Version: "c1"}
	next := xds.Update{Revision: "r2", Classes: map[string]*xds.ClassConfig{
		"a":  {Shared: freshLayer, Version: "a1"},
		"b":  b2,
		"b2": b2, // another version of b's service
		"c":  c,
	}}
	got := reuse(prev, next)
	if got.Revision != "r2" || len(got.Classes) != 4 {
		t.Fatalf("got %+v", got)
	}
	if got.Classes["a"] != prev.Classes["a"] {
		t.Error("an unchanged class did not keep its object")
	}
	if gb := got.Classes["b"]; gb.Version != "b2" || gb.Shared != layer1 || gb != got.Classes["b2"] {
		t.Errorf("changed class b: %+v, want version b2 on the previous layer, shared with b2", gb)
	}
	if b2.Shared != freshLayer {
		t.Error("reuse modified render's config")
	}
	if got.Classes["c"] != c {
		t.Error("a class with a new layer was not taken as rendered")
	}
	if u := reuse(xds.Update{}, next); u.Classes["b"] != b2 {
		t.Error("nothing to reuse: next must be returned as is")
	}
}
