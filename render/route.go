package render

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// HTTP routes: one model.Route becomes one Envoy route per match
// alternative, all with the same action, in declaration order (first match
// wins in both). Header operations, fault and mirror are in headers.go
// and filters.go; this file does matching, destinations and the action.

// routeCtx says where a list of routes is rendered.
type routeCtx struct {
	fl flavour
	// self owns the routes (nil for gateway routes): it is the default
	// destination service.
	self *model.Service
	// port is the port the request came in on; destinations without a port
	// go there when the target has it.
	port int
	// base is the model path of the route list ("services.x.routes").
	base string
	// host is the external host an egress gateway's virtual host serves
	// ("" elsewhere): a destination naming the external that has this
	// host goes to this host's cluster, not the external's first host.
	host string
}

// httpRoutes renders the routes that apply to rc.port, or, when none does and
// the owner is a service, one catch-all route to all its versions. It
// returns the routes and the clusters they need.
func (b *builder) httpRoutes(rc routeCtx, rs []model.Route, applies func(*model.Route) bool) ([]*routev3.Route, []*Resource) {
	var out []*routev3.Route
	var deps []*Resource
	for i := range rs {
		r := &rs[i]
		if !applies(r) {
			continue
		}
		path := model.Index(rc.base, i)
		action, ds := b.routeAction(rc, r, path)
		deps = append(deps, ds...)
		if action == nil {
			continue
		}
		matches := r.Match
		if len(matches) == 0 {
			matches = []model.Match{{}}
		}
		for j := range matches {
			m := b.routeMatch(matches[j], model.Index(path+".match", j))
			route := &routev3.Route{
				Name:   r.Name,
				Match:  m,
				Action: &routev3.Route_Route{Route: action},
			}
			b.decorate(rc, route, r, path)
			b.routeOrigin[route] = path
			if b.inc != nil {
				b.inc.noteRoute(route, path)
			}
			out = append(out, route)
		}
	}
	if len(out) == 0 && rc.self != nil {
		r := &model.Route{Name: "default", To: []model.Destination{{Weight: 100}}}
		action, ds := b.routeAction(rc, r, b.svcPath(rc.self.Name, ""))
		deps = append(deps, ds...)
		if action != nil {
			out = append(out, &routev3.Route{
				Name:   "default",
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: action},
			})
		}
	}
	return out, deps
}

// routeMatch renders one match alternative.
func (b *builder) routeMatch(m model.Match, path string) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
	if p := m.Path; p != nil {
		switch {
		case p.Exact != "":
			rm.PathSpecifier = &routev3.RouteMatch_Path{Path: p.Exact}
		case p.Regex != "":
			b.checkRegex(path+".path.regex", p.Regex)
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: p.Regex}}
		case p.Prefix != "":
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: p.Prefix}
		}
	}
	names := make([]string, 0, len(m.Headers))
	for n := range m.Headers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		rm.Headers = append(rm.Headers, b.headerMatcher(n, m.Headers[n], model.Join(path, "headers", n)))
	}
	if m.Method != "" {
		rm.Headers = append(rm.Headers, b.headerMatcher(":method", model.StringMatch{Exact: m.Method}, path+".method"))
	}
	return rm
}

// headerMatcher renders a header condition.
func (b *builder) headerMatcher(name string, sm model.StringMatch, path string) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name}
	switch {
	case sm.Present:
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	default:
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: b.stringMatcher(sm, path)}
	}
	return h
}

// stringMatcher renders an exact, prefix or regex match.
func (b *builder) stringMatcher(sm model.StringMatch, path string) *matcherv3.StringMatcher {
	switch {
	case sm.Prefix != "":
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: sm.Prefix}}
	case sm.Regex != "":
		b.checkRegex(path+".regex", sm.Regex)
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: sm.Regex}}}
	default:
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: sm.Exact}}
	}
}

// checkRegex rejects patterns RE2 would reject, so Envoy never NACKs a
// route config for a bad regex. The loader reports them first, at the
// value; this is the safety net for models that did not come through it.
func (b *builder) checkRegex(path, re string) {
	if err := model.CheckRegex(re); err != nil {
		b.errorf(CodeInvalidValue, path, "%v", err)
	}
}

// routeAction renders the destinations, timeout, retries, mirror and
// rewrite of a route.
func (b *builder) routeAction(rc routeCtx, r *model.Route, path string) (*routev3.RouteAction, []*Resource) {
	a := &routev3.RouteAction{}
	var deps []*Resource
	var live []model.Destination
	var names []string
	for j, d := range r.To {
		name, dep := b.destCluster(rc, d.Service, d.External, d.Version, d.Port, model.Index(path+".to", j))
		if name == "" {
			continue
		}
		deps = append(deps, dep)
		live = append(live, d)
		names = append(names, name)
	}
	switch {
	case len(names) == 0:
		return nil, deps
	case len(names) == 1:
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: names[0]}
	default:
		wc := &routev3.WeightedCluster{}
		for i, n := range names {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: n, Weight: u32or0(live[i].Weight)})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	if rc.fl == flavourGRPC {
		if r.Timeout > 0 {
			a.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: dur(r.Timeout)}
		}
	} else {
		// 0 disables Envoy's 15 s default, as Istio does: a route without a
		// timeout has none.
		a.Timeout = dur(r.Timeout)
	}
	// Zero attempts means no retries: no policy at all, since grpc-go NACKs
	// num_retries 0.
	if rt := r.Retries; rt != nil && rt.Attempts > 0 {
		rp := &routev3.RetryPolicy{RetryOn: rt.RetryOn, NumRetries: u32or0(rt.Attempts)}
		if rt.PerTryTimeout > 0 {
			rp.PerTryTimeout = dur(rt.PerTryTimeout)
		}
		a.RetryPolicy = rp
	}
	if mr := r.Mirror; mr != nil {
		name, dep := b.destCluster(rc, mr.Service, "", mr.Version, mr.Port, path+".mirror")
		if name != "" {
			deps = append(deps, dep)
			a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{
				Cluster:         name,
				RuntimeFraction: runtimeFraction(mr.Percent),
			}}
		}
	}
	if rw := r.Rewrite; rw != nil {
		if rw.Prefix != "" {
			a.PrefixRewrite = rw.Prefix
		}
		if rw.Authority != "" {
			a.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Authority}
		}
	}
	if len(live) == 1 {
		b.hashPolicy(rc, a, live[0])
	}
	return a, deps
}

// hashPolicy adds the RING_HASH header of a single destination's policy.
func (b *builder) hashPolicy(rc routeCtx, a *routev3.RouteAction, d model.Destination) {
	if d.External != "" {
		return
	}
	s := rc.self
	if d.Service != "" {
		s = b.m.Services[d.Service]
	}
	if s == nil {
		return
	}
	pol := s.TrafficPolicy
	if d.Version != "" {
		pol = policyFor(s, d.Version)
	}
	if pol != nil && pol.LoadBalancer == "RING_HASH" && pol.HashHeader != "" {
		a.HashPolicy = []*routev3.RouteAction_HashPolicy{{
			PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: pol.HashHeader}},
		}}
	}
}

// destCluster resolves a destination to its cluster name and the cluster
// resource. An unknown service or port is a diagnostic; an unknown version
// yields the name without a resource, which the consistency pass reports
// as a dangling reference at this destination's position.
func (b *builder) destCluster(rc routeCtx, service, external, version string, port int, path string) (string, *Resource) {
	if external != "" {
		e := b.m.External[external]
		if e == nil {
			b.errorf(CodeUnresolved, path+".external", "unknown external service %q", external)
			return "", nil
		}
		if rc.fl == flavourGRPC {
			b.errorf(CodeUnsupported, path+".external", "proxyless clients cannot route to external service %q", external)
			return "", nil
		}
		p := b.pickPort(e.Ports, port, rc.port, path, external)
		if p == nil || len(e.Hosts) == 0 {
			return "", nil
		}
		fl := flavourVia
		if rc.fl == flavourDirect {
			fl = flavourDirect
		}
		host := e.Hosts[0]
		if rc.host != "" && contains(e.Hosts, rc.host) {
			host = rc.host
		}
		r := b.externalCluster(fl, e, host, p)
		if r == nil {
			return "", nil
		}
		b.noteRef(r.Name, path)
		return r.Name, r
	}
	if service == "" && rc.self != nil {
		service = rc.self.Name
	}
	s := b.m.Services[service]
	if s == nil {
		b.errorf(CodeUnresolved, path+".service", "unknown service %q", service)
		return "", nil
	}
	p := b.pickPort(s.Ports, port, rc.port, path, service)
	if p == nil {
		return "", nil
	}
	fl := flavourMesh
	if rc.fl == flavourGRPC {
		fl = flavourGRPC
	}
	if version != "" && s.Versions[version] == nil {
		name := outboundCluster(p.Number, version, b.ix.host(s))
		b.noteRef(name, path+".version")
		return name, nil
	}
	r := b.serviceCluster(fl, s, p, version)
	if r == nil {
		return "", nil
	}
	b.noteRef(r.Name, path)
	return r.Name, r
}

// pickPort chooses a destination port: the one named, else the incoming
// port if the target has it, else the target's first port.
func (b *builder) pickPort(ports []model.Port, want, incoming int, path, target string) *model.Port {
	if want != 0 {
		if p := findPort(ports, want); p != nil {
			return p
		}
		b.errorf(CodeUnresolved, path+".port", "%q has no port %d", target, want)
		return nil
	}
	p := defaultPort(ports, incoming)
	if p == nil {
		b.errorf(CodeUnresolved, path, "%q has no ports", target)
	}
	return p
}

// runtimeFraction is a fixed share over a million for mirrors.
func runtimeFraction(percent float64) *corev3.RuntimeFractionalPercent {
	return &corev3.RuntimeFractionalPercent{DefaultValue: millionths(percent)}
}

// u32or0 keeps explicit zeros (a weight of 0 is meaningful).
func u32or0(n int) *wrapperspb.UInt32Value {
	if n < 0 {
		n = 0
	}
	return wrapperspb.UInt32(uint32(n))
}
