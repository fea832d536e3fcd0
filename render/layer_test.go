package render

import (
	"slices"
	"testing"

	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// TestSidecarsShareOneLayer checks that sidecars without dependsOn in one
// namespace share one outbound layer by pointer, that a proxy's own
// resources never repeat the layer's, and that Resources is their sorted
// union.
func TestSidecarsShareOneLayer(t *testing.T) {
	b, err := Render(Input{Mesh: loadCase(t, "bookinfo")})
	if err != nil {
		t.Fatal(err)
	}
	layers := map[*Layer][]string{}
	for _, c := range b.Classes() {
		p := b.Proxy(c)
		l := p.Shared()
		if p.Kind != KindSidecar {
			if l != nil {
				t.Errorf("%s: %s proxy has a layer", c, p.Kind)
			}
			continue
		}
		if l == nil {
			t.Fatalf("%s: sidecar without a layer", c)
		}
		layers[l] = append(layers[l], c)
		for _, typ := range snapshot.Rendered() {
			all := p.Resources(typ)
			if !slices.IsSortedFunc(all, func(a, b *Resource) int {
				if a.Name < b.Name {
					return -1
				}
				return 1
			}) {
				t.Errorf("%s %s: Resources not sorted and unique", c, typ)
			}
			if len(all) != len(l.Resources(typ))+len(p.Own(typ)) {
				t.Errorf("%s %s: %d resources, want layer %d + own %d", c, typ, len(all), len(l.Resources(typ)), len(p.Own(typ)))
			}
		}
	}
	if len(layers) == 0 || len(layers) >= len(b.Classes()) {
		t.Fatalf("%d layers for %d classes: not shared", len(layers), len(b.Classes()))
	}
}
