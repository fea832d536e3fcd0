package istioimport

import (
	"maps"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// httpRoute is one converted Istio HTTPRoute, before it is bound to the
// mesh or a gateway: Istio can scope each match to gateways (and ports),
// so binding filters matches.
type httpRoute struct {
	route model.Route
	// matchGateways and matchPorts are per match of route.
	matchGateways [][]string
	matchPorts    []int
	// dest are the resolved hosts of route.To.
	dest []host
	src  node
}

// mesh is the gateway name Istio uses for the sidecars.
const meshGateway = "mesh"

// virtualService converts a VirtualService: bound to "mesh" (the default)
// its HTTP routes become routes of the services its hosts name; bound to
// a gateway they become that gateway's routes, limited to its hosts.
func (c *converter) virtualService(o *object) {
	var bindings []string
	gwn := o.spec.get("gateways")
	for _, g := range gwn.list() {
		name := gatewayName(g.str())
		if name != meshGateway && c.mesh.Gateways[name] == nil {
			o.rep.drop(g, "gateway %q is not in the input (or could not be converted): routes bound to it are not converted", g.str())
			continue
		}
		bindings = append(bindings, name)
	}
	if !gwn.ok() {
		bindings = []string{meshGateway}
	}
	var routes []*httpRoute
	for _, r := range o.spec.get("http").list() {
		routes = append(routes, c.httpRoute(r, o))
	}
	hostNodes := o.spec.get("hosts").list()
	for _, b := range bindings {
		if b == meshGateway {
			c.bindMesh(o, hostNodes, routes)
		} else {
			c.bindGateway(o, b, hostNodes, routes)
		}
	}
	for _, f := range []string{"tcp", "tls"} {
		if n := o.spec.get(f); n.ok() {
			c.streamRoutes(o, f, n, bindings)
		}
	}
}

// gatewayName is the name in "NAMESPACE/NAME" or "NAME".
func gatewayName(s string) string {
	if _, n, ok := strings.Cut(s, "/"); ok {
		return dnsName(n)
	}
	if s == meshGateway {
		return s
	}
	return dnsName(s)
}

// bindMesh adds the routes that apply to sidecars to the services the
// hosts name. A host that is an external service takes no routes: the
// one thing Istio routes do there that gitmesh keeps is sending the
// traffic to the egress gateway, which is external.via.
func (c *converter) bindMesh(o *object, hostNodes []node, routes []*httpRoute) {
	seen := map[string]bool{}
	for _, hn := range hostNodes {
		h, err := c.resolveHost(hn.str(), o, hn)
		switch {
		case err != nil:
			o.rep.drop(hn, "%v: no routes for it", err)
		case h.egress != "":
			o.rep.drop(hn, "routes for the egress gateway's own service are not converted")
		case h.external != "":
			c.viaEgress(o, hn, h.external, routes)
		case !seen[h.service]:
			seen[h.service] = true
			s := c.mesh.Services[h.service]
			if first := c.routedBy[s.Name]; first != nil && first != o {
				o.rep.approx(hn, "%s %s/%s also routes %q: its routes are appended after theirs (Istio does not merge VirtualServices for sidecars: one of them wins)", first.kind, first.namespace, first.name, s.Name)
			} else {
				c.routedBy[s.Name] = o
			}
			for _, r := range routes {
				rt, ok := c.bind(r, meshGateway, o.rep)
				if !ok {
					continue
				}
				if !c.ownDestinations(&rt, r, s.Name, o.rep) {
					continue
				}
				if rt.Port != 0 {
					c.seePort(s.Name, rt.Port)
				}
				s.Routes = append(s.Routes, rt)
				c.routeSrc["services/"+s.Name] = append(c.routeSrc["services/"+s.Name], routeSource{r.src, o.rep})
			}
			c.origin("services/"+s.Name+".cue", o)
		}
	}
}

// ownDestinations prepares a service route's destinations: the route's
// own service is implicit, and the egress gateway cannot be a
// destination.
func (c *converter) ownDestinations(rt *model.Route, r *httpRoute, svc string, rep reporter) bool {
	for i, d := range r.dest {
		if d.egress != "" {
			rep.drop(r.src, "a route of a mesh service through the egress gateway has no gitmesh equivalent: declare the destination as a ServiceEntry with the gateway")
			return false
		}
		if d.service == svc && rt.To[i].Version != "" {
			// The route's own service is implicit: {version: "v2"}.
			rt.To[i].Service = ""
		}
	}
	return true
}

// viaEgress reads the mesh side of Istio's egress pattern: routes that
// send an external host to the egress gateway become external.via.
func (c *converter) viaEgress(o *object, hn node, ext string, routes []*httpRoute) {
	gw := ""
	for _, name := range o.spec.get("gateways").strs() {
		if g := c.mesh.Gateways[gatewayName(name)]; g != nil && g.Kind == model.GatewayEgress {
			gw = g.Name
		}
	}
	if gw == "" {
		for _, name := range slices.Sorted(maps.Keys(c.mesh.Gateways)) {
			if c.mesh.Gateways[name].Kind == model.GatewayEgress {
				gw = name
				break
			}
		}
	}
	for _, r := range routes {
		if _, ok := c.bind(r, meshGateway, reporter{out: new(Report)}); !ok {
			continue
		}
		toEgress := len(r.dest) > 0
		for _, d := range r.dest {
			toEgress = toEgress && d.egress != ""
		}
		var unserved []string
		if g := c.mesh.Gateways[gw]; g != nil {
			for _, h := range c.mesh.External[ext].Hosts {
				if !hostServed(listenerHosts(g, 0), h) {
					unserved = append(unserved, h)
				}
			}
		}
		switch {
		case toEgress && len(unserved) > 0:
			o.rep.drop(r.src, "egress gateway %q has no listener for %s: external.%s.via is not set (sidecars call it directly)", gw, strings.Join(unserved, ", "), ext)
		case toEgress && gw != "":
			c.mesh.External[ext].Via = gw
			o.rep.note(r.src, "sidecars send %q to the egress gateway: external.%s.via is %q", hn.str(), ext, gw)
			c.origin("external/"+ext+".cue", o)
		case toEgress:
			o.rep.drop(r.src, "the egress gateway of this route is not in the input: external %q is called directly", ext)
		default:
			o.rep.drop(r.src, "gitmesh external services take no routes from sidecars (only through an egress gateway): the route is not converted")
		}
	}
}

// bindGateway adds the routes that apply to gateway gw, limited to the
// VirtualService's hosts ("*" limits nothing).
func (c *converter) bindGateway(o *object, gw string, hostNodes []node, routes []*httpRoute) {
	g := c.mesh.Gateways[gw]
	var hosts []string
	for _, hn := range hostNodes {
		if hn.str() == "*" {
			hosts = nil
			break
		}
		hosts = append(hosts, hn.str())
	}
	for _, r := range routes {
		rt, ok := c.bind(r, gw, o.rep)
		if !ok {
			continue
		}
		// Istio ignores VirtualService hosts the Gateway does not serve;
		// gitmesh refuses them (GM0205), so they are left out here.
		rt.Hosts = nil
		for i, h := range hosts {
			if hostServed(listenerHosts(g, rt.Port), h) {
				rt.Hosts = append(rt.Hosts, h)
			} else {
				o.rep.drop(hostNodes[i], "host %q is not served by gateway %q (on port %d): Istio ignores it there", h, gw, rt.Port)
			}
		}
		if len(hosts) > 0 && len(rt.Hosts) == 0 {
			continue
		}
		dropped := false
		for i, d := range r.dest {
			switch {
			case d.egress != "":
				o.rep.drop(r.src, "a gateway route to the egress gateway has no gitmesh equivalent")
				dropped = true
			case d.service != "":
				rt.To[i].Service = d.service
				if rt.To[i].Port == 0 && g.Kind == model.GatewayIngress {
					if p := c.mesh.Services[d.service]; len(p.Ports) == 1 {
						rt.To[i].Port = p.Ports[0].Number
					}
				}
			}
		}
		if dropped {
			continue
		}
		g.Routes = append(g.Routes, rt)
		c.routeSrc["gateways/"+gw] = append(c.routeSrc["gateways/"+gw], routeSource{r.src, o.rep})
	}
	c.origin("gateways/"+gw+".cue", o)
}

// bind returns the route as it applies to binding b: the matches scoped
// to b, and the port those matches agree on. ok is false when no match
// applies to b.
func (c *converter) bind(r *httpRoute, b string, rep reporter) (model.Route, bool) {
	if r == nil {
		return model.Route{}, false
	}
	rt := r.route
	rt.To = slices.Clone(r.route.To)
	if len(r.route.Match) == 0 {
		return rt, true
	}
	rt.Match = nil
	var ports []int
	for i, m := range r.route.Match {
		if gws := r.matchGateways[i]; len(gws) > 0 && !slices.Contains(gws, b) {
			continue
		}
		rt.Match = append(rt.Match, m)
		ports = append(ports, r.matchPorts[i])
	}
	if len(rt.Match) == 0 {
		return rt, false
	}
	// Matches that say only gateways and port are catch-alls here.
	catchAll := false
	for _, m := range rt.Match {
		catchAll = catchAll || isEmptyMatch(m)
	}
	if catchAll {
		rt.Match = nil
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	if len(ports) == 1 {
		rt.Port = ports[0]
	} else if len(ports) > 1 {
		rep.approx(r.src, "its matches name different ports %v: gitmesh limits a whole route to one port, so the route applies to every port", ports)
	}
	return rt, true
}

func isEmptyMatch(m model.Match) bool {
	return m.Path == nil && len(m.Headers) == 0 && m.Method == ""
}

// httpRoute converts one HTTPRoute; nil when it cannot be (a redirect or
// a direct response has no destination in gitmesh).
func (c *converter) httpRoute(r node, o *object) *httpRoute {
	for _, f := range []string{"redirect", "directResponse", "delegate"} {
		if n := r.get(f); n.ok() {
			r.markAll()
			o.rep.drop(r, "%s", reason(f))
			return nil
		}
	}
	out := &httpRoute{src: r}
	out.route.Name = r.get("name").str()
	for _, m := range r.get("match").list() {
		mm, gws, port := c.match(m, o.rep)
		out.route.Match = append(out.route.Match, mm)
		out.matchGateways = append(out.matchGateways, gws)
		out.matchPorts = append(out.matchPorts, port)
	}
	sum := 0
	for _, d := range r.get("route").list() {
		dst := d.get("destination")
		hn := dst.get("host")
		h, err := c.resolveHost(hn.str(), o, hn)
		if err != nil {
			r.markAll()
			o.rep.add(hn, Dropped, "%v: the route is not converted", err)
			return nil
		}
		md := model.Destination{Service: h.service, External: h.external}
		md.Port, _ = dst.get("port").get("number").int()
		if sub := dst.get("subset"); sub.ok() {
			switch {
			case h.service != "":
				md.Version = c.version(h.service, sub.str(), sub, o.rep)
			case h.egress == "":
				o.rep.drop(sub, "external services have no subsets in gitmesh")
			}
		}
		if h.service != "" {
			c.seePort(h.service, md.Port)
		}
		var ok bool
		md.Weight, ok = d.get("weight").int()
		if !ok {
			md.Weight = 100
		}
		sum += md.Weight
		if hd := d.get("headers"); hd.ok() {
			o.rep.drop(hd, "gitmesh edits headers per route, not per destination")
		}
		out.route.To = append(out.route.To, md)
		out.dest = append(out.dest, h)
	}
	if len(out.route.To) == 0 {
		o.rep.drop(r, "a route without destinations is not converted")
		return nil
	}
	if len(out.route.To) == 1 {
		out.route.To[0].Weight = 100
	} else if sum != 100 && sum > 0 {
		o.rep.approx(r.get("route"), "weights sum to %d: scaled to 100 as Istio does", sum)
		normalize(out.route.To, sum)
	}
	if t := r.get("timeout"); t.ok() {
		out.route.Timeout = duration(t, o.rep)
	}
	out.route.Retries = retries(r.get("retries"), o.rep)
	out.route.Fault = fault(r.get("fault"), o.rep)
	out.route.Mirror = c.mirror(r, o)
	out.route.Headers = headers(r.get("headers"))
	if rw := r.get("rewrite"); rw.ok() {
		out.route.Rewrite = &model.Rewrite{Prefix: rw.get("uri").str(), Authority: rw.get("authority").str()}
		if *out.route.Rewrite == (model.Rewrite{}) {
			out.route.Rewrite = nil
		}
	}
	return out
}

// normalize scales weights that do not sum to 100, the rest going to the
// first destination.
func normalize(to []model.Destination, sum int) {
	total := 0
	for i := range to {
		to[i].Weight = to[i].Weight * 100 / sum
		total += to[i].Weight
	}
	to[0].Weight += 100 - total
}

// methods are the methods gitmesh's #Match allows.
var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// match converts an HTTPMatchRequest; conditions gitmesh cannot express
// are reported and left out, which makes the match broader than Istio's.
func (c *converter) match(m node, rep reporter) (model.Match, []string, int) {
	var out model.Match
	if u := m.get("uri"); u.ok() {
		out.Path = stringMatch(u, rep)
	}
	for _, h := range m.get("headers").entries() {
		if sm := stringMatch(h.val, rep); sm != nil {
			if out.Headers == nil {
				out.Headers = map[string]model.StringMatch{}
			}
			out.Headers[strings.ToLower(h.key)] = *sm
		}
	}
	if mn := m.get("method"); mn.ok() {
		ex := mn.get("exact")
		if ex.ok() && slices.Contains(methods, ex.str()) {
			out.Method = ex.str()
		} else {
			rep.drop(mn, "gitmesh matches one exact method (GET, POST …): the match is broader than in Istio")
		}
	}
	var gws []string
	for _, g := range m.get("gateways").strs() {
		gws = append(gws, gatewayName(g))
	}
	port, _ := m.get("port").int()
	return out, gws, port
}

// stringMatch converts exact, prefix and regex; an empty StringMatch is
// Istio's "present" for headers.
func stringMatch(n node, rep reporter) *model.StringMatch {
	switch {
	case n.has("exact"):
		return &model.StringMatch{Exact: n.get("exact").str()}
	case n.has("prefix"):
		return &model.StringMatch{Prefix: n.get("prefix").str()}
	case n.has("regex"):
		return &model.StringMatch{Regex: n.get("regex").str()}
	case n.n == nil || len(n.n.Content) == 0:
		return &model.StringMatch{Present: true}
	}
	rep.drop(n, "gitmesh matches exact, prefix or regex only: the match is broader than in Istio")
	return nil
}
