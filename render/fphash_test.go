package render

import (
	"reflect"
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

// TestAppendValue: the fingerprint encoding tells apart what a build could
// read differently, and is the same for equal values however they were
// made (maps in any insertion order).
func TestAppendValue(t *testing.T) {
	enc := func(v any) string {
		t.Helper()
		b, ok := appendValue(nil, reflect.ValueOf(&v).Elem())
		if !ok {
			t.Fatalf("no encoding for %#v", v)
		}
		return string(b)
	}
	distinct := []any{
		model.Service{Name: "ab", Namespace: "c"},
		model.Service{Name: "a", Namespace: "bc"},
		model.Service{Name: "a", Namespace: "bc", DependsOn: []string{}},
		model.Service{Name: "a", Namespace: "bc", DependsOn: []string{""}},
		model.Service{Name: "a", Namespace: "bc", TrafficPolicy: &model.TrafficPolicy{}},
		model.Service{Name: "a", Namespace: "bc", Versions: map[string]*model.Version{"v1": nil}},
		model.Service{Name: "a", Namespace: "bc", Versions: map[string]*model.Version{"v1": {}}},
		model.Service{Name: "a", Namespace: "bc", Routes: []model.Route{{To: []model.Destination{{Weight: 90}}}}},
		model.Service{Name: "a", Namespace: "bc", Routes: []model.Route{{To: []model.Destination{{Weight: 80}}}}},
		[]string{"a", "b"},
		[]string{"ab"},
		map[string][]string{"a": nil},
	}
	seen := map[string]int{}
	for i, v := range distinct {
		e := enc(v)
		if j, ok := seen[e]; ok {
			t.Errorf("values %d and %d encode alike: %#v, %#v", j, i, distinct[j], v)
		}
		seen[e] = i
	}
	a := map[string]int{}
	b := map[string]int{}
	for i, k := range []string{"x", "y", "z", "w"} {
		a[k] = i
	}
	for _, k := range []string{"w", "z", "y", "x"} {
		b[k] = a[k]
	}
	if enc(a) != enc(b) {
		t.Error("equal maps encode differently")
	}
}
