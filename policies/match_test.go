package policies

import (
	"testing"

	"github.com/gitmesh/gitmesh/schema/model"
)

func TestStringMatchCovers(t *testing.T) {
	for _, tc := range []struct {
		a, b model.StringMatch
		want bool
	}{
		{model.StringMatch{Prefix: "/api"}, model.StringMatch{Prefix: "/api/v1"}, true},
		{model.StringMatch{Prefix: "/api"}, model.StringMatch{Prefix: "/apix"}, true}, // Envoy prefixes are string prefixes
		{model.StringMatch{Prefix: "/api/v1"}, model.StringMatch{Prefix: "/api"}, false},
		{model.StringMatch{Prefix: "/api"}, model.StringMatch{Exact: "/api/x"}, true},
		{model.StringMatch{Prefix: "/api"}, model.StringMatch{Regex: "/api.*"}, false},
		{model.StringMatch{Exact: "/a"}, model.StringMatch{Exact: "/a"}, true},
		{model.StringMatch{Exact: "/a"}, model.StringMatch{Prefix: "/a"}, false},
		{model.StringMatch{Regex: "^v[12]$"}, model.StringMatch{Regex: "^v[12]$"}, true},
		{model.StringMatch{Regex: "^v[12]$"}, model.StringMatch{Exact: "v1"}, false}, // sound, not complete
		{model.StringMatch{Present: true}, model.StringMatch{Exact: "x"}, true},
		{model.StringMatch{}, model.StringMatch{Exact: "x"}, false},
	} {
		if got := stringMatchCovers(tc.a, tc.b); got != tc.want {
			t.Errorf("stringMatchCovers(%+v, %+v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMatchCovers(t *testing.T) {
	jason := map[string]model.StringMatch{"end-user": {Exact: "jason"}}
	for _, tc := range []struct {
		name string
		a, b model.Match
		want bool
	}{
		{"nil path covers any path", model.Match{}, model.Match{Path: &model.StringMatch{Exact: "/x"}}, true},
		{"path does not cover nil path", model.Match{Path: &model.StringMatch{Prefix: "/x"}}, model.Match{}, false},
		{"prefix / covers nil path", model.Match{Path: &model.StringMatch{Prefix: "/"}}, model.Match{Method: "GET"}, true},
		{"method narrows", model.Match{Method: "GET"}, model.Match{}, false},
		{"same method", model.Match{Method: "GET"}, model.Match{Method: "GET", Headers: jason}, true},
		{"header narrows", model.Match{Headers: jason}, model.Match{}, false},
		{"header kept", model.Match{Headers: jason}, model.Match{Headers: jason, Method: "POST"}, true},
	} {
		if got := matchCovers(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: matchCovers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPrincipalAndHostPatterns(t *testing.T) {
	const p = "cluster.local/ns/bookinfo/sa/reviews"
	for _, tc := range []struct {
		pattern string
		want    bool
	}{
		{"*", true}, {p, true}, {"*/sa/reviews", true}, {"cluster.local/ns/bookinfo/*", true},
		{"*/sa/ratings", false}, {"cluster.local/ns/other/*", false}, {"other.domain/ns/bookinfo/sa/reviews", false},
	} {
		if got := principalMatches(tc.pattern, p); got != tc.want {
			t.Errorf("principalMatches(%q) = %v, want %v", tc.pattern, got, tc.want)
		}
	}
	for _, tc := range []struct {
		pattern, host string
		want          bool
	}{
		{"*", "a.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*.a.example.com", true},
		{"*.a.example.com", "b.example.com", false},
		{"a.example.com", "a.example.com", true},
		{"a.example.com", "b.example.com", false},
	} {
		if got := hostMatches(tc.pattern, tc.host); got != tc.want {
			t.Errorf("hostMatches(%q, %q) = %v, want %v", tc.pattern, tc.host, got, tc.want)
		}
	}
}
