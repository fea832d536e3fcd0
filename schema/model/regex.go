package model

import (
	"fmt"
	"regexp/syntax"
)

// CheckRegex reports why re is not a regular expression Envoy accepts, or
// nil. Envoy matches with Google's RE2
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/type/matcher/v3/regex.proto),
// and Go's regexp/syntax parses the RE2 syntax (no backreferences, no
// lookaround), so a pattern Go rejects is one Envoy would NACK. It lives
// here so the loader (which reports it at the value) and render (which
// keeps it as the last check before Envoy) apply one rule.
func CheckRegex(re string) error {
	if _, err := syntax.Parse(re, syntax.Perl); err != nil {
		if se, ok := err.(*syntax.Error); ok {
			if se.Code == syntax.ErrInvalidPerlOp {
				return fmt.Errorf("invalid regex %q: %s %q (RE2 has no lookaround)", re, se.Code, se.Expr)
			}
			return fmt.Errorf("invalid regex %q: %s", re, se.Code)
		}
		return fmt.Errorf("invalid regex %q: %w", re, err)
	}
	return nil
}
