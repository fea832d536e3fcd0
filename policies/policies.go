// Package policies checks a loaded mesh for mistakes the schema cannot see:
// references that do not resolve, weights that do not add up, ports and hosts
// that disagree, mTLS and authorization that block declared callers, routes
// that can never match. It also runs the guardrail packs a mesh enables.
//
// Checks are pure functions of the model: no I/O, no clocks, and they walk
// names in sorted order, so the same mesh always yields the same findings.
// Every finding carries a stable code (see Codes and CODES.md), the field
// path it is about and the position that path was written at.
package policies

import (
	"fmt"
	"sort"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Check runs every built-in check and the guardrail packs enabled in
// m.Mesh.Guardrails over a loaded mesh and returns the findings sorted.
func Check(m *model.Mesh) model.Diagnostics {
	if m == nil {
		return nil
	}
	c := newChecker(m)
	// Order does not matter for the result (findings are sorted at the
	// end); it is kept in the order a reader would debug a mesh: names
	// first, then numbers, then conflicts, security, reachability, packs.
	for _, run := range []func(*checker){
		checkReferences,
		checkExtensions,
		checkUnsupported,
		checkEndpointPorts,
		checkWeights,
		checkPorts,
		checkShadowing,
		checkRetries,
		checkGateways,
		checkStreams,
		checkProxyless,
		checkHosts,
		checkConflicts,
		checkVIPs,
		checkMTLS,
		checkAuthz,
		checkReachability,
		checkEndpoints,
		checkEmpty,
		checkPacks,
		checkTrafficTests,
	} {
		run(c)
	}
	// Sort by path first so findings that share a position (or have none)
	// still come out in one order; the model's sort is stable.
	sort.SliceStable(c.ds, func(i, j int) bool { return c.ds[i].Path < c.ds[j].Path })
	c.ds.Sort()
	return c.ds
}

// checker carries the mesh, the name index built once per Check and the
// findings collected so far.
type checker struct {
	m  *model.Mesh
	ix *index
	ds model.Diagnostics
	// sets caches routeSets: most checks walk every route.
	sets []routeSet
}

func newChecker(m *model.Mesh) *checker {
	return &checker{m: m, ix: buildIndex(m)}
}

// report records a finding at path; the severity comes from the code table.
func (c *checker) report(code, path, format string, args ...any) {
	// A code missing from the table is a bug caught by the tests; at run
	// time it must not crash a control plane, so it blocks instead.
	sev, ok := severityOf[code]
	if !ok {
		sev = model.SeverityError
	}
	c.ds = append(c.ds, model.Diagnostic{
		Code:     code,
		Severity: sev,
		Pos:      c.m.Sources.Lookup(path),
		Path:     path,
		Message:  fmt.Sprintf(format, args...),
	})
}

// service returns the named service or nil; nil entries count as missing.
func (c *checker) service(name string) *model.Service { return c.m.Services[name] }

// external returns the named external service or nil.
func (c *checker) external(name string) *model.External { return c.m.External[name] }

// gateway returns the named gateway or nil.
func (c *checker) gateway(name string) *model.Gateway { return c.m.Gateways[name] }

// effectiveMTLS is the mode traffic into s must use (model.Mesh.EffectiveMTLS,
// shared with render).
func (c *checker) effectiveMTLS(s *model.Service) model.MTLSMode { return c.m.EffectiveMTLS(s) }

// routeSet is one list of routes with the path it lives at, so checks can
// walk service and gateway routes alike.
type routeSet struct {
	name    string // the owner's name (the map key)
	path    string // services.NAME or gateways.NAME
	service *model.Service
	gateway *model.Gateway
	routes  []model.Route
}

// routeSets returns every service's and every gateway's routes in name
// order, built on first use.
func (c *checker) routeSets() []routeSet {
	if c.sets != nil {
		return c.sets
	}
	out := []routeSet{}
	for _, name := range c.ix.services {
		if s := c.service(name); s != nil && len(s.Routes) > 0 {
			out = append(out, routeSet{name: name, path: model.Path("services", name), service: s, routes: s.Routes})
		}
	}
	for _, name := range c.ix.gateways {
		if g := c.gateway(name); g != nil && len(g.Routes) > 0 {
			out = append(out, routeSet{name: name, path: model.Path("gateways", name), gateway: g, routes: g.Routes})
		}
	}
	c.sets = out
	return out
}

// routePath is the path of route i of a set.
func (rs routeSet) routePath(i int) string { return model.Index(rs.path+".routes", i) }

// owner describes the set's owner for messages: `service "reviews"`.
func (rs routeSet) owner() string {
	if rs.service != nil {
		return fmt.Sprintf("service %q", rs.name)
	}
	return fmt.Sprintf("gateway %q", rs.name)
}

// httpWord names what HTTP routes bind to on the owner: ports of a service,
// listeners of a gateway.
func (rs routeSet) httpWord() string {
	if rs.service != nil {
		return "HTTP port"
	}
	return "HTTP listener"
}

// routeName names a route in messages, falling back to its index when the
// loader did not fill the default name.
func routeName(r model.Route, i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("route-%d", i)
}
