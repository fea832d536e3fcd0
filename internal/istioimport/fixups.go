package istioimport

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// fixPorts runs when every service has its ports: a route or destination
// port Istio names that the service does not have (the Kubernetes Service
// is the authority on ports) would fail gitmesh's policies (GM0202), and
// a gateway destination without a port is ambiguous for a service with
// several.
func (c *converter) fixPorts() {
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s := c.mesh.Services[name]
		srcs := c.routeSrc["services/"+name]
		for i := range s.Routes {
			r := &s.Routes[i]
			if p := s.Port(r.Port); r.Port != 0 && (p == nil || !p.Protocol.IsHTTP()) {
				srcs[i].rep.approx(srcs[i].n, "port %d is not an HTTP port of service %q: the route applies to all its HTTP ports", r.Port, name)
				r.Port = 0
			}
			c.fixDestinations(r, name, srcs[i])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Gateways)) {
		g := c.mesh.Gateways[name]
		srcs := c.routeSrc["gateways/"+name]
		for i := range g.Routes {
			c.fixDestinations(&g.Routes[i], "", srcs[i])
		}
	}
}

func (c *converter) fixDestinations(r *model.Route, owner string, src routeSource) {
	for j := range r.To {
		d := &r.To[j]
		target := c.mesh.Services[cmp.Or(d.Service, owner)]
		if target == nil {
			continue
		}
		if d.Port != 0 && target.Port(d.Port) == nil {
			src.rep.approx(src.n, "destination port %d is not a port of service %q: the port is left to gitmesh (the incoming one)", d.Port, target.Name)
			d.Port = 0
		}
		if d.Port == 0 && owner == "" && len(target.Ports) > 1 {
			for _, p := range target.Ports {
				if p.Protocol.IsHTTP() {
					d.Port = p.Number
					src.rep.approx(src.n, "no destination port for service %q, which has several: port %d, its first HTTP port", target.Name, p.Number)
					break
				}
			}
		}
	}
}

// hostServed reports whether a listener host pattern admits host h, the
// way gitmesh's policies do (GM0205): "*" admits all, "*.example.com" a
// name under it, otherwise equal.
func hostServed(patterns []string, h string) bool {
	for _, p := range patterns {
		switch {
		case p == "*" || p == h:
			return true
		case strings.HasPrefix(p, "*.") && strings.HasSuffix(strings.TrimPrefix(h, "*"), p[1:]):
			return true
		}
	}
	return false
}

// listenerHosts are the hosts of g's listeners (on port, or all).
func listenerHosts(g *model.Gateway, port int) []string {
	var out []string
	for _, l := range g.Listeners {
		if port == 0 || l.Port == port {
			out = append(out, l.Hosts...)
		}
	}
	return out
}
