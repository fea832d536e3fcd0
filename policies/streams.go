package policies

import (
	"fmt"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Stream routes: routing on ingress PASSTHROUGH and tcp listeners.
//
// An ingress listener is a stream listener when Envoy forwards its bytes
// instead of reading HTTP requests: protocol tcp, protocol tls (SNI-routed;
// with tls.mode SIMPLE or MUTUAL the TLS is terminated first), or any
// listener with tls.mode PASSTHROUGH. The rule, the same as Istio's
// VirtualService `tls:` and `tcp:` routes but in the one routes list:
//
//   - A gateway route is bound to stream listeners by its `port`: a route
//     with the port of a stream listener is a stream route; a route without
//     `port` applies to the HTTP listeners only. (On a port shared by a
//     terminated and a PASSTHROUGH listener, a route is a stream route when
//     every host it lists is a host of a stream listener on the port.)
//   - Each host of a stream listener is one filter chain, matched by SNI
//     server_names (a "*" host or a tcp listener: no SNI match). The chain
//     forwards (tcp_proxy) to the first stream route on the port whose
//     `hosts` lists the host, or that lists no hosts; weighted `to` spreads
//     connections, not requests.
//   - A stream route carries only `hosts`, `to` and `name`: match, rewrite,
//     retries, fault, headers, mirror and timeout need HTTP (GM0209). A tcp
//     listener cannot tell hosts apart (no SNI), so its hosts stay "*" and
//     its routes list none (GM0209).
//   - A stream listener host no route forwards is an error (GM0210): Envoy
//     would have no filter chain for it and close every connection.
//
// Egress gateways take their ports from the externals routed through them
// (render/egress.go), so none of this applies to them.

// isStream reports whether route i of a gateway set is a stream route.
func (rs routeSet) isStream(i int) bool { return rs.gateway.StreamRoute(rs.routes[i]) }

// checkStreams applies the stream route rule above (GM0209, GM0210).
func checkStreams(c *checker) {
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil || g.Kind != model.GatewayIngress {
			continue
		}
		base := model.Path("gateways", name)
		for i, l := range g.Listeners {
			lp := model.Index(base+".listeners", i)
			if _, clash := protocolClash(g, i); clash || !g.IsStreamListener(l) {
				continue // a clashing listener is GM0302's finding alone
			}
			if l.Protocol == model.ProtocolTCP && !(len(l.Hosts) == 0 || len(l.Hosts) == 1 && l.Hosts[0] == "*") {
				c.report(CodeTCPRoute, lp+".hosts", "tcp listener on port %d cannot tell hosts apart (plain TCP has no SNI), want hosts [%q]", l.Port, "*")
				continue
			}
			for k, h := range orStar(l.Hosts) {
				if g.StreamRouteFor(l.Port, h) >= 0 {
					continue
				}
				path := lp
				if len(l.Hosts) > 0 {
					path = model.Index(lp+".hosts", k)
				}
				c.report(CodeUnroutedListener, path, "no route forwards %s on port %d: add a route with port %d%s",
					hostWord(h), l.Port, l.Port, hostHint(h))
			}
		}
		for i, r := range g.Routes {
			if !g.StreamRoute(r) {
				continue
			}
			c.streamRouteFields(model.Index(base+".routes", i), g, r)
		}
	}
}

// streamRouteFields reports what a stream route sets that needs HTTP.
func (c *checker) streamRouteFields(rp string, g *model.Gateway, r model.Route) {
	kind := "PASSTHROUGH"
	tcp := false
	for _, l := range g.Listeners {
		if l.Port == r.Port && l.Protocol == model.ProtocolTCP {
			kind, tcp = "tcp", true
		}
	}
	bad := func(field string) {
		c.report(CodeTCPRoute, rp+"."+field, "route on %s listener port %d forwards bytes, so %s (HTTP only) cannot apply; keep hosts and to, or terminate TLS",
			kind, r.Port, field)
	}
	if tcp && len(r.Hosts) > 0 {
		c.report(CodeTCPRoute, rp+".hosts", "route on tcp listener port %d cannot select hosts (plain TCP has no SNI), remove hosts", r.Port)
	}
	if len(r.Match) > 0 {
		bad("match")
	}
	if r.Timeout != 0 {
		bad("timeout")
	}
	if r.Retries != nil {
		bad("retries")
	}
	if r.Fault != nil {
		bad("fault")
	}
	if r.Mirror != nil {
		bad("mirror")
	}
	if r.Headers != nil {
		bad("headers")
	}
	if r.Rewrite != nil {
		bad("rewrite")
	}
}

func hostWord(h string) string {
	if h == "*" {
		return "connections"
	}
	return fmt.Sprintf("host %q", h)
}

func hostHint(h string) string {
	if h == "*" {
		return ""
	}
	return fmt.Sprintf(" and hosts [%q]", h)
}

// orStar treats an empty host list as every host, as render does.
func orStar(hosts []string) []string {
	if len(hosts) == 0 {
		return []string{"*"}
	}
	return hosts
}
