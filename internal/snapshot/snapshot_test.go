package snapshot

import (
	"testing"
)

// TestTypes: one push order (secrets, clusters, endpoints, listeners,
// routes), render's types are it without secrets, and callers cannot
// change it for each other.
func TestTypes(t *testing.T) {
	want := [...]string{SecretType, ClusterType, EndpointType, ListenerType, RouteType}
	if Types() != want {
		t.Fatalf("Types() = %q", Types())
	}
	r := Rendered()
	if r != [...]string{ClusterType, EndpointType, ListenerType, RouteType} {
		t.Fatalf("Rendered() = %q", r)
	}
	r[0] = "x"
	if Rendered()[0] != ClusterType {
		t.Error("a caller changed the list")
	}
	for i, typ := range want {
		if TypeIndex(typ) != i {
			t.Errorf("TypeIndex(%q) = %d, want %d", typ, TypeIndex(typ), i)
		}
	}
	if TypeIndex("type.googleapis.com/envoy.config.route.v3.VirtualHost") != -1 {
		t.Error("an unserved type has an index")
	}
}

func TestSame(t *testing.T) {
	a := &ClassConfig{Version: "v1"}
	for _, c := range []struct {
		x, y *ClassConfig
		want bool
	}{
		{a, a, true},
		{a, &ClassConfig{Version: "v1"}, true},
		{a, &ClassConfig{Version: "v2"}, false},
		{&ClassConfig{}, &ClassConfig{}, false},
		{nil, nil, true},
		{a, nil, false},
		{nil, a, false},
	} {
		if got := c.x.Same(c.y); got != c.want {
			t.Errorf("%+v.Same(%+v) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}
