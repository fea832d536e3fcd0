package policies

import (
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkGateways checks what only gateway routes have: hosts (GM0205) and, on
// egress gateways, the external hosts the routes apply to (egress.go:
// GM0202, GM0205) and externals that do not leave through the gateway
// (GM0206).
func checkGateways(c *checker) {
	checkViaHosts(c)
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil {
			continue
		}
		for i, r := range g.Routes {
			rp := model.Index(model.Path("gateways", name, "routes"), i)
			if g.StreamRoute(r) {
				// Stream routes select listener hosts exactly: each host
				// is one SNI filter chain (streams.go).
				for k, h := range r.Hosts {
					if !g.StreamHost(r.Port, h) {
						c.report(CodeGatewayHost, model.Index(rp+".hosts", k),
							"host %q is not a host of a PASSTHROUGH or tls listener of gateway %q on port %d (stream routes name listener hosts exactly)", h, name, r.Port)
					}
				}
				continue
			}
			for k, h := range r.Hosts {
				if r.Port != 0 && !hasRoutableListener(g, r.Port) {
					break // the port is wrong (GM0202); hosts cannot be judged
				}
				if !gatewayServes(g, r.Port, h) {
					c.report(CodeGatewayHost, model.Index(rp+".hosts", k),
						"host %q is not served by any listener of gateway %q", h, name)
				}
			}
			if g.Kind != model.GatewayEgress {
				continue
			}
			checkEgressRoute(c, g, name, rp, r)
			for k, d := range r.To {
				e := c.external(d.External)
				if e == nil || e.Via == name {
					continue
				}
				// Sidecars send an external's traffic through the gateway
				// named in its via only; any other gateway's route to it
				// never sees a request.
				c.report(CodeEgressBypass, model.Index(rp+".to", k)+".external",
					"external service %q does not set via %q, so its traffic never passes this route", d.External, name)
			}
		}
	}
}

// checkViaHosts reports external hosts the egress gateway in their via does
// not listen for (GM0205): sidecars send the traffic there, and a gateway
// without a listener host for it answers 404.
func checkViaHosts(c *checker) {
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil || e.Via == "" {
			continue
		}
		g := c.gateway(e.Via)
		if g == nil || g.Kind != model.GatewayEgress {
			continue // GM0103 or GM0109
		}
		for k, h := range e.Hosts {
			if !listensFor(g, h) {
				c.report(CodeGatewayHost, model.Index(model.Path("external", name, "hosts"), k),
					"host %q is not served by any listener of egress gateway %q", h, e.Via)
			}
		}
	}
}

// listensFor reports whether any listener of g, HTTP or TLS (SNI), lists
// host.
func listensFor(g *model.Gateway, host string) bool {
	for _, l := range g.Listeners {
		for _, lh := range l.Hosts {
			if hostMatches(lh, host) {
				return true
			}
		}
	}
	return false
}

// hasRoutableListener reports whether g has an HTTP-routable listener on port.
func hasRoutableListener(g *model.Gateway, port int) bool {
	for _, l := range g.Listeners {
		if l.Port == port && listenerRoutable(g, l) {
			return true
		}
	}
	return false
}

// gatewayServes reports whether a routable listener of g (on port, or on
// any port when port is 0) serves host.
func gatewayServes(g *model.Gateway, port int, host string) bool {
	for _, l := range g.Listeners {
		if (port != 0 && l.Port != port) || !listenerRoutable(g, l) {
			continue
		}
		for _, lh := range l.Hosts {
			if hostMatches(lh, host) {
				return true
			}
		}
	}
	return false
}

// hostMatches reports whether listener host pattern p admits route host h:
// "*" admits all, "*.example.com" admits "a.example.com" and the narrower
// pattern "*.a.example.com", otherwise the two must be equal.
func hostMatches(p, h string) bool {
	switch {
	case p == "*" || p == h:
		return true
	case strings.HasPrefix(p, "*."):
		return strings.HasSuffix(strings.TrimPrefix(h, "*"), p[1:])
	}
	return false
}
