package model

import "testing"

// TestJoin checks that extending a path quotes only the new names, so the
// result is a key of Sources (a path quoted whole has no position).
func TestJoin(t *testing.T) {
	for _, tc := range []struct {
		path  string
		elems []string
		want  string
	}{
		{"services.x.routes[2].match[0]", []string{"headers", "x-user", "regex"}, `services.x.routes[2].match[0].headers."x-user".regex`},
		{`services."my-svc"`, []string{"ports"}, `services."my-svc".ports`},
		{"", []string{"services", "a-b"}, `services."a-b"`},
		{"mesh", nil, "mesh"},
	} {
		if got := Join(tc.path, tc.elems...); got != tc.want {
			t.Errorf("Join(%q, %q) = %q, want %q", tc.path, tc.elems, got, tc.want)
		}
	}
}

func TestCheckRegex(t *testing.T) {
	for _, tc := range []struct{ re, want string }{
		{"^/api/v[0-9]+/.*$", ""},
		{"(?i)admin|root", ""},
		{"/api/(v1", `invalid regex "/api/(v1": missing closing )`},
		{"^(?!admin)", `invalid regex "^(?!admin)": invalid or unsupported Perl syntax "(?!" (RE2 has no lookaround)`},
		{`(a)\1`, `invalid regex "(a)\\1": invalid escape sequence`},
	} {
		got := ""
		if err := CheckRegex(tc.re); err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckRegex(%q) = %q, want %q", tc.re, got, tc.want)
		}
	}
}
