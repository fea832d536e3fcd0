package policies

import (
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkShadowing reports routes that can never match (GM0203): first match
// wins, so a route placed after one that matches every request it would
// match (a catch-all, or the same match written twice) is dead config. The
// usual cause is a canary or header rule added below the default route; it
// then receives no traffic and the rollout looks healthy while nothing runs.
func checkShadowing(c *checker) {
	for _, rs := range c.routeSets() {
		for j := 1; j < len(rs.routes); j++ {
			for i := 0; i < j; i++ {
				// An HTTP route never covers a stream route (streams.go)
				// and the other way round: they bind different listeners.
				if rs.gateway != nil && rs.isStream(i) != rs.isStream(j) {
					continue
				}
				if !routeCovers(rs.routes[i], rs.routes[j]) {
					continue
				}
				path := rs.routePath(j)
				if len(rs.routes[j].Match) > 0 {
					path += ".match"
				}
				what := "matches every request it would match"
				if isCatchAll(rs.routes[i]) {
					what = "matches every request"
				}
				c.report(CodeUnreachableRoute, path, "route %q is unreachable: earlier route %q %s",
					routeName(rs.routes[j], j), routeName(rs.routes[i], i), what)
				break
			}
		}
	}
}

// isCatchAll reports whether a route matches every request on its ports.
func isCatchAll(r model.Route) bool {
	if len(r.Match) == 0 {
		return true
	}
	for _, m := range r.Match {
		if m.IsCatchAll() {
			return true
		}
	}
	return false
}

// routeCovers reports whether every request route b matches is matched by
// route a. It is sound but not complete: it never claims coverage that does
// not hold, and it gives up on regexes other than identical ones.
func routeCovers(a, b model.Route) bool {
	if a.Port != 0 && a.Port != b.Port {
		return false
	}
	if !hostsCover(a.Hosts, b.Hosts) {
		return false
	}
	if isCatchAll(a) {
		return true
	}
	if len(b.Match) == 0 {
		return false // b matches everything; a does not
	}
	for _, mb := range b.Match {
		covered := false
		for _, ma := range a.Match {
			if matchCovers(ma, mb) {
				covered = true
				break
			}
		}
		if !covered {
			return false
		}
	}
	return true
}

// hostsCover reports whether gateway route hosts a include all of b. Empty
// means every host of the listener.
func hostsCover(a, b []string) bool {
	if len(a) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	for _, h := range b {
		found := false
		for _, g := range a {
			if g == h {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// matchCovers reports whether match a holds for every request match b holds
// for: a's path covers b's, a's method is empty or equal, and each header a
// requires b requires the same way.
func matchCovers(a, b model.Match) bool {
	if a.Method != "" && a.Method != b.Method {
		return false
	}
	if !pathCovers(a.Path, b.Path) {
		return false
	}
	for name, ha := range a.Headers {
		hb, ok := b.Headers[name]
		if !ok || !stringMatchCovers(ha, hb) {
			return false
		}
	}
	return true
}

// pathCovers compares path matches; nil matches every path.
func pathCovers(a, b *model.StringMatch) bool {
	if a == nil {
		return true
	}
	if b == nil {
		b = &model.StringMatch{Prefix: "/"}
	}
	return stringMatchCovers(*a, *b)
}

// stringMatchCovers reports whether string match a holds whenever b does.
// Envoy prefix matching is a plain string prefix ("/api" matches "/apix").
func stringMatchCovers(a, b model.StringMatch) bool {
	switch {
	case a.Regex != "":
		return a.Regex == b.Regex
	case a.Exact != "":
		return b.Exact == a.Exact && b.Regex == ""
	case a.Prefix != "":
		if b.Regex != "" {
			return false
		}
		if b.Exact != "" {
			return strings.HasPrefix(b.Exact, a.Prefix)
		}
		return b.Prefix != "" && strings.HasPrefix(b.Prefix, a.Prefix)
	case a.Present:
		// Any header value, but only if b requires the header too (the
		// caller checked that b names the header).
		return true
	}
	return false
}
