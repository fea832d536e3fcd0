package render

import (
	"sort"

	"github.com/gitmesh/gitmesh/schema/model"
)

// index is the intermediate view render builds protos from: facts derived
// from the model once per Render (effective mTLS, hosts, identities,
// resolved dependencies, extension placement) so that the per-proxy builders
// never re-derive them and never iterate a map.
type index struct {
	m *model.Mesh
	// serviceNames and externalNames are the sorted keys of the model maps.
	serviceNames  []string
	externalNames []string
	// deps memoises each service's resolved dependency list.
	deps map[string]*deps
	// all is the dependency set "*", shared by every service that calls all.
	all *deps
	// versions memoises each service's sorted version names
	// (model.Service.VersionNames sorts afresh on every call).
	versions map[*model.Service][]string
	// outKeys memoises each service's outboundKey.
	outKeys map[*model.Service]string
	// svcNames memoises each service's host and identity.
	svcNames map[*model.Service]svcNames
	// extByService and extByGateway list the extensions that apply, in
	// filter order (phase, then priority high first, then name).
	extByService map[string][]*model.Extension
	extByGateway map[string][]*model.Extension
	// vips is every service's addresses (model.Mesh.VIPs, the one owner).
	vips *model.VIPAssignment
}

// deps is what one service may call, resolved and sorted by name.
type deps struct {
	services  []*model.Service
	externals []*model.External
	// key identifies the dependency set; services with equal keys can share
	// outbound route configs.
	key string
}

func newIndex(m *model.Mesh, discovered map[string][]string) *index {
	ix := &index{
		vips:          m.VIPs(discovered),
		m:             m,
		serviceNames:  m.ServiceNames(),
		externalNames: m.ExternalNames(),
		deps:          map[string]*deps{},
		versions:      map[*model.Service][]string{},
		outKeys:       map[*model.Service]string{},
		svcNames:      map[*model.Service]svcNames{},
		extByService:  map[string][]*model.Extension{},
		extByGateway:  map[string][]*model.Extension{},
	}
	ix.placeExtensions()
	return ix
}

// mtls is the effective mTLS mode of traffic into s
// (model.Mesh.EffectiveMTLS, shared with policies).
func (ix *index) mtls(s *model.Service) model.MTLSMode { return ix.m.EffectiveMTLS(s) }

// addresses are the service's VIPs; none when the service has no
// addresses and mesh.vipRange is "" (or full).
func (ix *index) addresses(s *model.Service) []string { return ix.vips.Addresses[s.Name] }

// host is the service's FQDN, built once per service.
func (ix *index) host(s *model.Service) string { return ix.names(s).host }

// spiffe is the identity of the service's workloads, built once per
// service.
func (ix *index) spiffe(s *model.Service) string { return ix.names(s).spiffe }

// svcNames are a service's derived names: every cluster, virtual host and
// capture entry of the service needs them.
type svcNames struct{ host, spiffe string }

func (ix *index) names(s *model.Service) svcNames {
	n, ok := ix.svcNames[s]
	if !ok {
		n = svcNames{host: ix.m.Host(s), spiffe: ix.m.SPIFFEID(s.Namespace, s.ServiceAccount)}
		ix.svcNames[s] = n
	}
	return n
}

// gatewaySPIFFE is the identity of a gateway's Envoy.
func (ix *index) gatewaySPIFFE(g *model.Gateway) string {
	return ix.m.SPIFFEID(g.Namespace, g.ServiceAccount)
}

// depsOf resolves s.DependsOn: "*" is every service (the service itself
// included, as in Istio: an application may call its own service by name)
// and every external service; names that match neither are skipped here
// (policies report them). Services with the same dependency set get the
// same key, so their outbound config is built once and shared.
func (ix *index) depsOf(s *model.Service) *deps {
	if d, ok := ix.deps[s.Name]; ok {
		return d
	}
	if s.CallsAll() {
		// Every "*" service has the same set: built once, not once per
		// service (that was O(services²) in an unscoped mesh).
		if ix.all == nil {
			ix.all = ix.allDeps()
		}
		ix.deps[s.Name] = ix.all
		return ix.all
	}
	d := &deps{}
	names := append([]string(nil), s.DependsOn...)
	sort.Strings(names)
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if t, ok := ix.m.Services[n]; ok {
			d.services = append(d.services, t)
			d.key += "s:" + n + ","
		} else if e, ok := ix.m.External[n]; ok {
			d.externals = append(d.externals, e)
			d.key += "e:" + n + ","
		}
	}
	ix.deps[s.Name] = d
	return d
}

// allDeps is the dependency set "*": every service and every external.
func (ix *index) allDeps() *deps {
	d := &deps{key: "*"}
	for _, n := range ix.serviceNames {
		d.services = append(d.services, ix.m.Services[n])
	}
	for _, n := range ix.externalNames {
		d.externals = append(d.externals, ix.m.External[n])
	}
	return d
}

// versionNames is s.VersionNames(), sorted once per render.
func (ix *index) versionNames(s *model.Service) []string {
	vs, ok := ix.versions[s]
	if !ok {
		vs = s.VersionNames()
		ix.versions[s] = vs
	}
	return vs
}

// outboundKey is outboundKey(s, depsOf(s)), built once per service.
func (ix *index) outboundKey(s *model.Service) string {
	k, ok := ix.outKeys[s]
	if !ok {
		k = outboundKey(s, ix.depsOf(s))
		ix.outKeys[s] = k
	}
	return k
}

// svcPathKey names the model path of one field of a service.
type svcPathKey struct{ service, field string }

// svcPath is model.Path("services", service, field) (field "" for the
// service itself), built once per render: findings are rare, but every
// cluster, listener and capture entry carries its origin path.
func (b *builder) svcPath(service, field string) string {
	k := svcPathKey{service, field}
	if p, ok := b.paths[k]; ok {
		return p
	}
	p := model.Path("services", service)
	if field != "" {
		p = model.Path("services", service, field)
	}
	b.paths[k] = p
	return p
}

// endpoints returns the endpoints of one version: discovered ones when the
// input has them for "SERVICE/VERSION", else the static ones from Git.
func endpointsOf(in Input, s *model.Service, version string) []model.Endpoint {
	if eps, ok := in.Endpoints[s.Name+"/"+version]; ok {
		return eps
	}
	if v := s.Versions[version]; v != nil {
		return v.Endpoints
	}
	return nil
}

// endpointPort is the port to dial on one endpoint for p: the endpoint's
// per-port override by port name, else the target port.
func endpointPort(e model.Endpoint, p *model.Port) int {
	if n, ok := e.Ports[p.Name]; ok && n > 0 {
		return n
	}
	return p.Target()
}

// policyFor is the traffic policy of one version: the version's override
// if it has one, else the service's.
func policyFor(s *model.Service, version string) *model.TrafficPolicy {
	if v := s.Versions[version]; v != nil && v.TrafficPolicy != nil {
		return v.TrafficPolicy
	}
	return s.TrafficPolicy
}

// defaultPort is the port a destination without a port goes to: the
// incoming port when the target has it, else the target's first port.
func defaultPort(ports []model.Port, incoming int) *model.Port {
	for i := range ports {
		if ports[i].Number == incoming {
			return &ports[i]
		}
	}
	if len(ports) > 0 {
		return &ports[0]
	}
	return nil
}

// findPort returns the port with the number, or nil.
func findPort(ports []model.Port, number int) *model.Port {
	for i := range ports {
		if ports[i].Number == number {
			return &ports[i]
		}
	}
	return nil
}

// placeExtensions sorts extensions into the services and gateways they
// apply to, in the order their filters run.
func (ix *index) placeExtensions() {
	names := ix.m.ExtensionNames()
	exts := make([]*model.Extension, 0, len(names))
	for _, n := range names {
		exts = append(exts, ix.m.Extensions[n])
	}
	sort.SliceStable(exts, func(i, j int) bool {
		a, b := exts[i], exts[j]
		if pa, pb := phaseRank(a.Phase), phaseRank(b.Phase); pa != pb {
			return pa < pb
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.Name < b.Name
	})
	for _, e := range exts {
		for _, s := range e.Services {
			ix.extByService[s] = append(ix.extByService[s], e)
		}
		for _, g := range e.Gateways {
			ix.extByGateway[g] = append(ix.extByGateway[g], e)
		}
	}
}

// phaseRank orders extension phases as their filters run.
func phaseRank(phase string) int {
	switch phase {
	case model.PhaseAuthn:
		return 0
	case model.PhaseAuthz:
		return 1
	default:
		return 2
	}
}

// usesFault reports whether any route in rs injects faults, so the HCM
// carries the fault filter only when it is needed.
func usesFault(rs []model.Route) bool {
	for i := range rs {
		if rs[i].Fault != nil {
			return true
		}
	}
	return false
}

// isIP reports whether an endpoint address is a literal IP (STATIC) rather
// than a DNS name (STRICT_DNS). It is a syntactic check; package net is off
// limits in render.
func isIP(addr string) bool {
	if addr == "" {
		return false
	}
	if containsByte(addr, ':') {
		return true // IPv6
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
