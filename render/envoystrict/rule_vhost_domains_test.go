package envoystrict

import "testing"

func TestRuleVhostDomains(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "a domain in two virtual hosts", code: CodeDomains, want: `domain "b" is in virtual host "r-vh0" and again in "r-vh1"`,
			own: with(t, routeConfig("r", "c", []string{"a", "b"}, []string{"b"}))},
		{name: "case does not tell domains apart", code: CodeDomains, want: `"B.example.com"`,
			own: with(t, routeConfig("r", "c", []string{"b.example.com"}, []string{"B.example.com"}))},
		{name: "two wildcards", code: CodeDomains, want: `wildcard domain "*"`,
			own: with(t, routeConfig("r", "c", []string{"*"}, []string{"*"}))},
		{name: "a suffix wildcard twice", code: CodeDomains, want: `"*.example.com"`,
			own: with(t, routeConfig("r", "c", []string{"*.example.com"}, []string{"*.example.com"}))},
		{name: "a domain twice in one virtual host", code: CodeDomains, want: `domain "a"`,
			own: with(t, routeConfig("r", "c", []string{"a", "a"}))},
		{name: "with and without port", own: with(t, routeConfig("r", "c", []string{"a", "a:80"}, []string{"*", "*.example.com", "example.*"}))},
	})
}
