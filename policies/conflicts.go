package policies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/schema/model"
)

// checkConflicts reports declarations that contradict each other inside one
// object: listeners of one gateway sharing a port with different protocols
// (GM0302: one socket cannot speak both), and ports, listeners or routes
// declared twice under one name or number (GM0303: render keys clusters,
// listeners, endpoint overrides and route stats by them, so the second would
// silently replace or shadow the first).
func checkConflicts(c *checker) {
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil {
			continue
		}
		names := map[string]int{}
		for i, l := range g.Listeners {
			lp := model.Index(model.Path("gateways", name, "listeners"), i)
			if j, clash := protocolClash(g, i); clash {
				c.report(CodeListenerProtocol, lp+".protocol", "port %d is %q here but %q in listeners[%d]",
					l.Port, l.Protocol, g.Listeners[j].Protocol, j)
			}
			if l.Name == "" {
				continue
			}
			if j, ok := names[l.Name]; ok {
				hint := ""
				if g.Listeners[j].Port == l.Port {
					// The default name is PROTOCOL-PORT, so two SNI
					// listeners on one port collide unless named.
					hint = "; listeners sharing a port need a name each"
				}
				c.report(CodeDuplicatePort, lp+".name", "listener name %q is also used by listeners[%d]%s", l.Name, j, hint)
			} else {
				names[l.Name] = i
			}
		}
	}
	for _, rs := range c.routeSets() {
		names := map[string]int{}
		for i, r := range rs.routes {
			if r.Name == "" {
				continue
			}
			if j, ok := names[r.Name]; ok {
				c.report(CodeDuplicatePort, rs.routePath(i)+".name", "route name %q is also used by routes[%d]", r.Name, j)
			} else {
				names[r.Name] = i
			}
		}
	}
	for _, name := range c.ix.services {
		if s := c.service(name); s != nil {
			c.duplicatePorts(model.Path("services", name, "ports"), s.Ports)
			c.targetPorts(s)
		}
	}
	for _, name := range c.ix.externals {
		if e := c.external(name); e != nil {
			c.duplicatePorts(model.Path("external", name, "ports"), e.Ports)
		}
	}
}

// duplicatePorts reports a port number or name used twice in one list.
func (c *checker) duplicatePorts(path string, ports []model.Port) {
	numbers := map[int]int{}
	names := map[string]int{}
	for i, p := range ports {
		pp := model.Index(path, i)
		if j, ok := numbers[p.Number]; ok {
			c.report(CodeDuplicatePort, pp+".number", "port %d is also declared by %s", p.Number, portRef(j))
		} else {
			numbers[p.Number] = i
		}
		if p.Name == "" {
			continue
		}
		if j, ok := names[p.Name]; ok {
			c.report(CodeDuplicatePort, pp+".name", "port name %q is also used by %s", p.Name, portRef(j))
		} else {
			names[p.Name] = i
		}
	}
}

// targetPorts reports, for a service with a sidecar, two ports with one
// target port (GM0303: virtualInbound matches a captured connection by its
// original destination port, the target port, so Envoy would refuse two
// chains with one match) and a target port the sidecar itself owns
// (GM0307: the proxy binds it, and capture never redirects it, so the
// application could neither bind it nor be reached on it).
func (c *checker) targetPorts(s *model.Service) {
	if s.Proxy != model.ProxySidecar && s.Proxy != "" {
		return
	}
	path := model.Path("services", s.Name, "ports")
	seen, numbers := map[int]int{}, map[int]bool{}
	for i, p := range s.Ports {
		tp := p.Target()
		pp := model.Index(path, i) + ".targetPort"
		dupNumber := numbers[p.Number] // reported by duplicatePorts already
		numbers[p.Number] = true
		if j, ok := seen[tp]; ok && !dupNumber {
			c.report(CodeDuplicatePort, pp, "target port %d is also %s's: the sidecar tells inbound ports apart by target port", tp, portRef(j))
		} else {
			seen[tp] = i
		}
		if slices.Contains(proxyports.Reserved(), tp) {
			c.report(CodeProxyPort, pp, "target port %d is a port the sidecar proxy owns (%s); the application cannot listen on it", tp, reservedList())
		}
	}
}

// reservedList is proxyports.Reserved as text.
func reservedList() string {
	var out []string
	for _, p := range proxyports.Reserved() {
		out = append(out, strconv.Itoa(p))
	}
	return strings.Join(out, ", ")
}

func portRef(i int) string { return fmt.Sprintf("ports[%d]", i) }

// protocolClash reports whether listener i shares its port with an earlier
// listener of another protocol (GM0302), and which. Checks that would only
// repeat that mistake in other words (an unrouted stream listener) skip
// such a listener.
func protocolClash(g *model.Gateway, i int) (int, bool) {
	l := g.Listeners[i]
	for j := range i {
		if g.Listeners[j].Port == l.Port {
			return j, g.Listeners[j].Protocol != l.Protocol
		}
	}
	return 0, false
}
