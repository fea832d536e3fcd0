package policies

import "github.com/gitmesh/gitmesh/schema/model"

// checkReferences resolves every name a route, a mirror, a dependsOn list or
// an external's via uses (GM0101–GM0109). A name that does not resolve would
// render a route to a cluster that does not exist: Envoy and grpc-go accept
// it silently and fail requests later, so it has to be caught here.
func checkReferences(c *checker) {
	for _, rs := range c.routeSets() {
		for i, r := range rs.routes {
			rp := rs.routePath(i)
			for k, d := range r.To {
				c.checkDestination(rs, model.Index(rp+".to", k), d)
			}
			if r.Mirror != nil {
				c.checkMirror(rs, rp+".mirror", r.Mirror)
			}
		}
	}
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil {
			continue
		}
		for i, d := range s.DependsOn {
			if d == "*" || c.service(d) != nil || c.external(d) != nil {
				continue
			}
			c.report(CodeUnknownDependency, model.Index(model.Path("services", name, "dependsOn"), i),
				"unknown service or external service %q", d)
		}
	}
	for _, name := range c.ix.externals {
		e := c.external(name)
		if e == nil || e.Via == "" {
			continue
		}
		path := model.Path("external", name, "via")
		switch g := c.gateway(e.Via); {
		case g == nil:
			c.report(CodeUnknownGateway, path, "unknown gateway %q", e.Via)
		case g.Kind == model.GatewayIngress:
			c.report(CodeViaIngress, path, "gateway %q is an ingress gateway, via needs an egress gateway", e.Via)
		}
	}
}

// checkDestination resolves one weighted destination at path.
func (c *checker) checkDestination(rs routeSet, path string, d model.Destination) {
	switch {
	case d.Service != "" && d.External != "":
		c.report(CodeAmbiguousDest, path, "destination names both service %q and external service %q, want one", d.Service, d.External)
		return
	case d.External != "":
		if c.external(d.External) == nil {
			c.report(CodeUnknownExternal, path+".external", "unknown external service %q", d.External)
			return
		}
		if d.Version != "" {
			c.report(CodeUnknownVersion, path+".version", "external service %q has no versions, got version %q", d.External, d.Version)
		}
		c.checkDeclared(rs, path+".external", d.External)
		return
	case d.Service == "" && rs.gateway != nil:
		c.report(CodeAmbiguousDest, path, "gateway route destination names neither a service nor an external service")
		return
	}
	name := d.Service
	if name == "" {
		name = rs.name
	} else if c.service(name) == nil {
		c.report(CodeUnknownService, path+".service", "unknown service %q", name)
		return
	}
	c.checkVersion(path+".version", name, d.Version)
	if d.Service != "" {
		c.checkDeclared(rs, path+".service", d.Service)
	}
}

// checkMirror resolves a mirror's service and version.
func (c *checker) checkMirror(rs routeSet, path string, mr *model.Mirror) {
	name := mr.Service
	if name == "" {
		if rs.gateway != nil {
			c.report(CodeUnknownService, path, "gateway mirror names no service")
			return
		}
		name = rs.name
	} else if c.service(name) == nil {
		c.report(CodeUnknownService, path+".service", "unknown service %q", name)
		return
	}
	c.checkVersion(path+".version", name, mr.Version)
	if mr.Service != "" {
		c.checkDeclared(rs, path+".service", mr.Service)
	}
}

// checkVersion reports a version the named (existing) service lacks.
func (c *checker) checkVersion(path, service, version string) {
	if version == "" {
		return
	}
	if _, ok := c.service(service).Versions[version]; !ok {
		c.report(CodeUnknownVersion, path, "unknown version %q of service %q", version, service)
	}
}

// checkDeclared warns when a service route sends traffic to a service or
// external the route's owner does not list in dependsOn (GM0108): dependsOn
// scopes what proxies receive, so the destination's cluster may be missing
// where the route runs. Gateways have no dependsOn; they see what they route to.
func (c *checker) checkDeclared(rs routeSet, path, target string) {
	if rs.service == nil || target == rs.name || rs.service.CallsAll() || c.ix.deps[rs.name][target] {
		return
	}
	c.report(CodeUndeclaredDependency, path, "service %q routes to %q, which is not in its dependsOn", rs.name, target)
}

// checkExtensions resolves the services and gateways a Wasm extension
// applies to (GM0105, GM0103): a misspelt name would silently leave the
// intended proxies without the filter, which for an AUTHN or AUTHZ plugin
// means unauthenticated traffic.
func checkExtensions(c *checker) {
	for _, name := range c.m.ExtensionNames() {
		x := c.m.Extensions[name]
		if x == nil {
			continue
		}
		for i, s := range x.Services {
			if c.service(s) == nil {
				c.report(CodeUnknownExtensionSvc, model.Index(model.Path("extensions", name, "services"), i),
					"unknown service %q", s)
			}
		}
		for i, g := range x.Gateways {
			if c.gateway(g) == nil {
				c.report(CodeUnknownGateway, model.Index(model.Path("extensions", name, "gateways"), i),
					"unknown gateway %q", g)
			}
		}
	}
}
