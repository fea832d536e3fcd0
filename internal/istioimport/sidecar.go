package istioimport

import (
	"maps"
	"slices"
	"strings"
)

// sidecarScope is a Sidecar waiting for applySidecars: Istio applies the
// one that selects a workload over its namespace's over the root
// namespace's, so all of them are needed first.
type sidecarScope struct {
	o        *object
	level    int // 0 mesh, 1 namespace, 2 workload
	services []string
	deps     []string // "*" for everything
}

// sidecar reads a Sidecar's egress hosts: the services a workload's proxy
// knows about, which in gitmesh is the service's dependsOn.
func (c *converter) sidecar(o *object) {
	var svcs []string
	level := 2
	if ws := o.spec.get("workloadSelector"); ws.ok() {
		labels := ws.get("labels").strMap()
		for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
			s := c.mesh.Services[name]
			if s.Namespace == o.namespace && subset(labels, c.svc[name].selector) {
				svcs = append(svcs, name)
			}
		}
		if len(svcs) == 0 {
			o.rep.drop(ws, "selects no service of the input: the Sidecar is not converted")
			o.spec.markAll()
			return
		}
	} else {
		svcs, level = c.namespaceServices(o.namespace)
	}
	deps := map[string]bool{}
	for _, e := range o.spec.get("egress").list() {
		if p := e.get("port"); p.ok() {
			o.rep.drop(p, "gitmesh scopes by service, not by port: the hosts apply to every port")
		}
		for _, h := range e.get("hosts").list() {
			c.egressHost(h, o, deps)
		}
	}
	sc := sidecarScope{o: o, level: level, services: svcs}
	if deps["*"] {
		sc.deps = []string{"*"}
	} else {
		sc.deps = slices.Sorted(maps.Keys(deps))
	}
	c.sidecars = append(c.sidecars, sc)
}

// namespaceServices are the services of ns, or of the mesh for the root
// namespace, with the scope level that means.
func (c *converter) namespaceServices(ns string) ([]string, int) {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		if ns == c.opts.RootNamespace || c.mesh.Services[name].Namespace == ns {
			out = append(out, name)
		}
	}
	if ns == c.opts.RootNamespace {
		return out, 0
	}
	return out, 1
}

// egressHost adds what one "NAMESPACE/HOST" egress host names to deps:
// services of the namespace ("*" all of them, "." the Sidecar's, "~"
// none) matching the host, and external services with a matching host.
func (c *converter) egressHost(h node, o *object, deps map[string]bool) {
	ns, host, ok := strings.Cut(h.str(), "/")
	if !ok {
		o.rep.drop(h, "egress host %q is not NAMESPACE/HOST", h.str())
		return
	}
	switch ns {
	case "~":
		return
	case ".":
		ns = o.namespace
	}
	if ns == "*" && host == "*" {
		deps["*"] = true
		return
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s := c.mesh.Services[name]
		if ns != "*" && s.Namespace != ns {
			continue
		}
		for _, form := range []string{name, name + "." + s.Namespace, c.mesh.Host(s)} {
			if hostServed([]string{host}, form) {
				deps[name] = true
			}
		}
	}
	// ServiceEntries are visible from every namespace by default
	// (exportTo "*"), so the namespace part does not limit them.
	for _, name := range slices.Sorted(maps.Keys(c.mesh.External)) {
		for _, eh := range c.mesh.External[name].Hosts {
			if hostServed([]string{host}, eh) {
				deps[name] = true
			}
		}
	}
}

// applySidecars sets dependsOn, widest scope first so narrower Sidecars
// override, as Istio picks the most specific one.
func (c *converter) applySidecars() {
	slices.SortStableFunc(c.sidecars, func(a, b sidecarScope) int { return a.level - b.level })
	set := map[string]int{}
	for _, sc := range c.sidecars {
		for _, name := range sc.services {
			if l, ok := set[name]; ok && l == sc.level {
				sc.o.rep.drop(sc.o.spec.get("egress"), "service %q already has its scope from another Sidecar of the same scope", name)
				continue
			}
			set[name] = sc.level
			c.mesh.Services[name].DependsOn = slices.Clone(sc.deps)
			c.origin("services/"+name+".cue", sc.o)
		}
		if len(sc.services) > 0 && sc.level < 2 {
			sc.o.rep.approx(sc.o.root.get("metadata"), "a namespace-wide Sidecar: dependsOn of each service it scopes (%s)", strings.Join(sc.services, ", "))
		}
	}
}
