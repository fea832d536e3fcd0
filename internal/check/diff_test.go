package check

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustJSON(t *testing.T, s string) any {
	t.Helper()
	v, err := parseJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGenericDiff: the fallback names every changed leaf by path, matches
// list elements by name, and marks added and removed subtrees.
func TestGenericDiff(t *testing.T) {
	for _, tc := range []struct {
		name, a, b string
		want       []string
	}{
		{"leaf", `{"x":{"y":1}}`, `{"x":{"y":2}}`, []string{"x.y: 1 → 2"}},
		{"added", `{}`, `{"z":"s"}`, []string{`z: added "s"`}},
		{"removed", `{"z":[1]}`, `{}`, []string{`z: removed (was [1])`}},
		{"by name", `{"l":[{"name":"a","v":1},{"name":"b","v":1}]}`, `{"l":[{"name":"b","v":2},{"name":"a","v":1}]}`,
			[]string{"l[b].v: 1 → 2"}},
		{"by index", `{"l":[1,2]}`, `{"l":[1,3,4]}`, []string{"l[1]: 2 → 3", "l[2]: added 4"}},
		{"labels", `{"circuit_breakers":{"thresholds":[{"max_connections":1}]}}`, `{"circuit_breakers":{"thresholds":[{"max_connections":2}]}}`,
			[]string{"circuit breakers max_connections: 1 → 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &lines{}
			genericDiff(l, "", mustJSON(t, tc.a), mustJSON(t, tc.b))
			if diff := cmp.Diff(tc.want, l.result()); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestDiffBounded: a huge change is cut at maxLines with a count of the
// rest, and long values are cut too.
func TestDiffBounded(t *testing.T) {
	var a, b []string
	for i := 0; i < 100; i++ {
		a = append(a, fmt.Sprintf(`"k%03d":1`, i))
		b = append(b, fmt.Sprintf(`"k%03d":%q`, i, strings.Repeat("x", 500)))
	}
	l := &lines{}
	genericDiff(l, "", mustJSON(t, "{"+strings.Join(a, ",")+"}"), mustJSON(t, "{"+strings.Join(b, ",")+"}"))
	got := l.result()
	if len(got) != maxLines+1 || got[maxLines] != "… and 75 more changes" {
		t.Fatalf("got %d lines, last %q", len(got), got[len(got)-1])
	}
	if n := len([]rune(got[0])); n > 2*maxValue {
		t.Errorf("line of %d runes not bounded: %s", n, got[0])
	}
}

func TestRouteAndRBACDiff(t *testing.T) {
	route := func(w1, w3 int, timeout string) string {
		return fmt.Sprintf(`{"name":"9080","virtual_hosts":[{"name":"r:9080","domains":["r"],"routes":[{"name":"canary","match":{"prefix":"/"},
			"route":{"weighted_clusters":{"clusters":[{"name":"outbound|9080|v1|r","weight":%d},{"name":"outbound|9080|v3|r","weight":%d}]},"timeout":%q}}]}]}`, w1, w3, timeout)
	}
	l := &lines{}
	a, b := mustJSON(t, route(50, 50, "10s")), mustJSON(t, route(80, 20, "5s"))
	routeConfigDiff(l, obj(a), obj(b))
	genericDiff(l, "", a, b)
	want := []string{`vhost "r:9080" route "canary": weights v1 50→80, v3 50→20; timeout 10s→5s`}
	if diff := cmp.Diff(want, l.result()); diff != "" {
		t.Errorf("route (-want +got)\n%s", diff)
	}

	rbac := func(p string) string {
		return fmt.Sprintf(`{"filter_chains":[{"filters":[{"name":"hcm","typed_config":{"http_filters":[{"name":"rbac","typed_config":{
			"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC","rules":{"policies":{"allow-0":{"permissions":[{"any":true}],
			"principals":[{"authenticated":{"principal_name":{"exact":%q}}}]}}}}}]}}]}]}`, p)
	}
	l = &lines{}
	a, b = mustJSON(t, rbac("spiffe://td/ns/a/sa/x")), mustJSON(t, rbac("spiffe://td/ns/a/sa/y"))
	rbacDiff(l, a, b)
	genericDiff(l, "", a, b)
	want = []string{"RBAC: principal spiffe://td/ns/a/sa/y added to allow", "RBAC: principal spiffe://td/ns/a/sa/x removed from allow"}
	if diff := cmp.Diff(want, l.result()); diff != "" {
		t.Errorf("rbac (-want +got)\n%s", diff)
	}
}
