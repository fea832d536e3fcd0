package policies

import "github.com/gitmesh/gitmesh/schema/model"

// checkReachability points at configuration nothing uses (GM0501, GM0502,
// both info): a service no other service lists in dependsOn, no route sends
// to and no gateway routes to is usually left over from a rename, or an
// entry point whose gateway route was forgotten. A service that only calls
// others is fine as long as something reaches it, typically a gateway.
func checkReachability(c *checker) {
	reached := make(map[string]bool, len(c.ix.services))
	for _, rs := range c.routeSets() {
		for _, r := range rs.routes {
			for _, d := range r.To {
				if d.Service != "" && d.Service != rs.name {
					reached[d.Service] = true
				}
			}
			if r.Mirror != nil && r.Mirror.Service != "" && r.Mirror.Service != rs.name {
				reached[r.Mirror.Service] = true
			}
		}
	}
	for name, deps := range c.ix.deps {
		for d := range deps {
			if d != name {
				reached[d] = true // a set: order does not matter
			}
		}
	}
	for _, name := range c.ix.services {
		if c.service(name) == nil || reached[name] || calledByAll(c.ix.callsAll, name) {
			continue
		}
		c.report(CodeUnreachedService, model.Path("services", name),
			"service %q is not reached by any route, gateway or dependsOn", name)
	}

	egressVia := map[string]bool{}
	for _, name := range c.ix.externals {
		if e := c.external(name); e != nil && e.Via != "" {
			egressVia[e.Via] = true
		}
	}
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil || len(g.Routes) > 0 || (g.Kind == model.GatewayEgress && egressVia[name]) || hasStreamListener(g) {
			continue // a stream listener without a route is GM0210's error, said per host
		}
		c.report(CodeUnusedGateway, model.Path("gateways", name), "gateway %q has no routes, so it serves nothing", name)
	}
}

// calledByAll reports whether a service other than name has dependsOn "*",
// which reaches every service.
func calledByAll(callsAll []string, name string) bool {
	return len(callsAll) > 1 || (len(callsAll) == 1 && callsAll[0] != name)
}

func hasStreamListener(g *model.Gateway) bool {
	for _, l := range g.Listeners {
		if g.IsStreamListener(l) {
			return true
		}
	}
	return false
}
