package policies

import "github.com/gitmesh/gitmesh/schema/model"

// checkEndpoints warns about traffic targets that have nowhere to go
// (GM0503): a version of a statically discovered service without endpoints,
// a STATIC external service without endpoints, an egress gateway that
// externals leave through but that has no endpoints for sidecars to send to.
// Each renders valid config whose requests all fail with 503 "no healthy
// upstream"; services discovered from Kubernetes get endpoints at run time
// and are left alone.
func checkEndpoints(c *checker) {
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Discovery != "static" {
			continue
		}
		for _, v := range s.VersionNames() {
			if ver := s.Versions[v]; ver != nil && len(ver.Endpoints) == 0 {
				c.report(CodeNoEndpoints, model.Path("services", name, "versions", v),
					"version %q of service %q has no endpoints and discovery is %q", v, name, "static")
			}
		}
	}
	egressUsed := map[string]bool{}
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil {
			continue
		}
		if e.Via != "" {
			egressUsed[e.Via] = true
		}
		if e.Resolution == "STATIC" && len(e.Endpoints) == 0 {
			c.report(CodeNoEndpoints, model.Path("external", name, "endpoints"),
				"external service %q has resolution %q but no endpoints", name, "STATIC")
		}
	}
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g != nil && g.Kind == model.GatewayEgress && egressUsed[name] && len(g.Endpoints) == 0 {
			c.report(CodeNoEndpoints, model.Path("gateways", name, "endpoints"),
				"egress gateway %q has no endpoints, so sidecars cannot send external traffic through it", name)
		}
	}
}
