package policies

import (
	"fmt"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkHosts reports hosts claimed twice (GM0301). A host on a port can have
// one owner: two ingress listeners claiming it split traffic by whichever DNS
// or load balancer answers; two externals claiming it render two clusters
// for one name; an external shadowing a mesh service's host captures that
// service's traffic. The first claimant in name order keeps the host; every
// later one is reported, naming the first.
func checkHosts(c *checker) {
	type claim struct {
		by   string
		path string
	}
	ingress := map[string]claim{}
	for _, name := range c.ix.gateways {
		g := c.gateway(name)
		if g == nil || g.Kind != model.GatewayIngress {
			continue
		}
		for i, l := range g.Listeners {
			lp := model.Index(model.Path("gateways", name, "listeners"), i)
			for k, h := range l.Hosts {
				key := fmt.Sprintf("%d/%s", l.Port, h)
				path := model.Index(lp+".hosts", k)
				if first, ok := ingress[key]; ok {
					c.report(CodeHostClaimed, path, "host %q on port %d is already claimed by %s at %s",
						h, l.Port, first.by, first.path)
					continue
				}
				ingress[key] = claim{by: fmt.Sprintf("gateway %q", name), path: path}
			}
		}
	}

	serviceHosts := make(map[string]string, 3*len(c.ix.services))
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil {
			continue
		}
		short := name + "." + s.Namespace
		for _, h := range []string{short, short + ".svc", c.m.Host(s)} {
			serviceHosts[h] = name
		}
	}
	external := map[string]string{}
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil {
			continue
		}
		for k, h := range e.Hosts {
			path := model.Index(model.Path("external", name, "hosts"), k)
			if svc, ok := serviceHosts[h]; ok {
				c.report(CodeHostClaimed, path, "host %q is the host of service %q", h, svc)
				continue
			}
			for _, p := range e.Ports {
				key := fmt.Sprintf("%s:%d", h, p.Number)
				if first, ok := external[key]; ok && first != name {
					c.report(CodeHostClaimed, path, "host %q port %d is already claimed by external service %q",
						h, p.Number, first)
					break
				}
				external[key] = name
			}
		}
	}
}
