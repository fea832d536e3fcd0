package istioimport

import (
	"regexp"
	"slices"

	"github.com/gitmesh/gitmesh/schema/model"
)

// retryOnRE is the form of gitmesh's retries.retryOn.
var retryOnRE = regexp.MustCompile(`^[a-z0-9-]+(,[a-z0-9-]+)*$`)

// streamRoutes converts tcp and tls routes. gitmesh forwards streams on
// ingress gateways only (a route whose port is a tcp, tls or PASSTHROUGH
// listener's); sidecars send a TCP service's connections to all its
// versions, so mesh-bound stream routes are reported.
func (c *converter) streamRoutes(o *object, field string, n node, bindings []string) {
	for _, r := range n.list() {
		var ports []int
		var hosts []string
		for _, m := range r.get("match").list() {
			if p, ok := m.get("port").int(); ok {
				ports = append(ports, p)
			}
			hosts = append(hosts, m.get("sniHosts").strs()...)
			m.get("gateways")
		}
		var to []model.Destination
		sum := 0
		ok := true
		for _, d := range r.get("route").list() {
			dst := d.get("destination")
			h, err := c.resolveHost(dst.get("host").str(), o, dst)
			if err != nil || h.service == "" {
				ok = false
				continue
			}
			md := model.Destination{Service: h.service}
			md.Port, _ = dst.get("port").get("number").int()
			c.seePort(h.service, md.Port)
			if w, has := d.get("weight").int(); has {
				md.Weight = w
			} else {
				md.Weight = 100
			}
			sum += md.Weight
			to = append(to, md)
		}
		if len(to) == 1 {
			to[0].Weight = 100
		} else if sum != 100 && sum > 0 {
			normalize(to, sum)
		}
		slices.Sort(ports)
		ports = slices.Compact(ports)
		for _, b := range bindings {
			g := c.mesh.Gateways[b]
			switch {
			case b == meshGateway:
				o.rep.drop(r, "sidecars send a TCP or TLS service's connections to all its versions: gitmesh has no %s routes for services", field)
				continue
			case !ok || len(to) == 0:
				o.rep.drop(r, "%s routes forward to mesh services only", field)
				continue
			case g.Kind != model.GatewayIngress:
				o.rep.drop(r, "gitmesh forwards streams on ingress gateways only")
				continue
			}
			port := 0
			switch len(ports) {
			case 0:
				for _, l := range g.Listeners {
					if l.Protocol == model.ProtocolTCP || l.Protocol == model.ProtocolTLS || l.TLS != nil && l.TLS.Mode == model.TLSPassthrough {
						if port != 0 && port != l.Port {
							port = -1
						} else if port == 0 {
							port = l.Port
						}
					}
				}
			case 1:
				port = ports[0]
			default:
				port = -1
			}
			if port <= 0 {
				o.rep.drop(r, "the %s route names no single stream listener port of gateway %q", field, b)
				continue
			}
			g.Routes = append(g.Routes, model.Route{Name: r.get("name").str(), Port: port, Hosts: hosts, To: slices.Clone(to)})
			c.routeSrc["gateways/"+b] = append(c.routeSrc["gateways/"+b], routeSource{r, o.rep})
			c.origin("gateways/"+b+".cue", o)
		}
	}
}
