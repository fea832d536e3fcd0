package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkEndpointPorts resolves the port names of per-endpoint port overrides
// (`endpoints: [{address, ports: {NAME: PORT}}]`, GM0110). render looks an
// override up by the name of the port it is building a cluster for; a name
// no port has is never looked up, so the endpoint silently keeps the target
// port and the version's traffic goes to the wrong port (in a live test a
// third of all RPCs failed Unavailable). The names an override may use:
//   - a service version's endpoints: the service's port names;
//   - a STATIC external's endpoints: the external's port names;
//   - a gateway's endpoints: its listener names and the port names of the
//     externals whose via is the gateway (sidecars dial the gateway on the
//     external's port, overridden by that port's name).
func checkEndpointPorts(c *checker) {
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil {
			continue
		}
		c.sidecarEndpointPorts(s)
		valid := portNames(s.Ports)
		for _, v := range s.VersionNames() {
			ver := s.Versions[v]
			if ver == nil {
				continue
			}
			c.endpointPorts(model.Path("services", name, "versions", v, "endpoints"), ver.Endpoints, valid,
				fmt.Sprintf("service %q", name))
		}
	}
	viaPorts := map[string][]string{}
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil {
			continue
		}
		valid := portNames(e.Ports)
		c.endpointPorts(model.Path("external", name, "endpoints"), e.Endpoints, valid,
			fmt.Sprintf("external service %q", name))
		if e.Via != "" {
			viaPorts[e.Via] = append(viaPorts[e.Via], valid...)
		}
	}
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil {
			continue
		}
		valid := append([]string(nil), viaPorts[name]...)
		for _, l := range g.Listeners {
			if l.Name != "" {
				valid = append(valid, l.Name)
			}
		}
		c.endpointPorts(model.Path("gateways", name, "endpoints"), g.Endpoints, valid,
			fmt.Sprintf("gateway %q (listener names and the port names of externals via it)", name))
	}
}

// sidecarEndpointPorts warns about a sidecar service's endpoint that
// overrides a port with one other than its target port (GM0308). A
// sidecar's virtualInbound matches a captured connection by its original
// destination port, the target port (render/capture.go), and inbound|PORT||
// dials the target port on loopback: a connection to the override port
// takes the passthrough chain instead, with only the service's
// port-independent authorization and none of the port's HTTP filters.
// Overrides are for workloads reached without capture (several services
// on one loopback host in development); in a pod, set targetPort.
func (c *checker) sidecarEndpointPorts(s *model.Service) {
	if s.Proxy != model.ProxySidecar && s.Proxy != "" {
		return
	}
	for _, v := range s.VersionNames() {
		ver := s.Versions[v]
		if ver == nil {
			continue
		}
		path := model.Path("services", s.Name, "versions", v, "endpoints")
		for i, ep := range ver.Endpoints {
			for _, p := range s.Ports {
				n, ok := ep.Ports[p.Name]
				tp := p.Target()
				if !ok || n <= 0 || n == tp {
					continue
				}
				c.report(CodeSidecarEndpointPort, model.Index(path, i)+"."+model.Path("ports", p.Name),
					"endpoint %q listens on %d, not on port %q's target port %d: the sidecar's inbound capture matches %d, so connections to %d pass through with only the port-independent authorization (set targetPort instead; overrides suit workloads reached without capture)",
					ep.Address, n, p.Name, tp, tp, n)
			}
		}
	}
}

// endpointPorts reports override keys of eps that are not in valid.
func (c *checker) endpointPorts(path string, eps []model.Endpoint, valid []string, owner string) {
	for i, ep := range eps {
		for _, k := range sortedKeysOf(ep.Ports) {
			if slices.Contains(valid, k) {
				continue
			}
			c.report(CodeUnknownEndpointPort, model.Index(path, i)+"."+model.Path("ports", k),
				"endpoint %q overrides port %q, which %s does not have (ports: %s)",
				ep.Address, k, owner, quoteList(valid))
		}
	}
}

// portNames lists the names of ports, skipping unnamed ones.
func portNames(ports []model.Port) []string {
	var out []string
	for _, p := range ports {
		if p.Name != "" {
			out = append(out, p.Name)
		}
	}
	return out
}

// quoteList formats names for a message: "a", "b"; or none.
func quoteList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
