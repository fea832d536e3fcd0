package istioimport

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"

	"github.com/gitmesh/gitmesh/schema/model"
)

// trafficTest is one generated traffic test, in the syntax of the
// repository's tests: block (schema/test.cue, from issue 16 item 1).
type trafficTest struct {
	name, from, request string
	headers             map[string]string
	principal           string
	to                  map[string]float64
	status              int
	statusPercent       float64
	timeout             model.Duration
	retries             *model.Retries
	// source says which Istio route the test proves.
	source string
}

// caller is a proxy class a request can leave from, with its identity.
type caller struct {
	class     string
	service   string // "" for a gateway
	namespace string
	principal string
}

// request is what a test sends.
type request struct {
	method, path string
	headers      map[string]string
	port         int
	host         string
}

// generateTests derives one test per route match: a request that takes
// that route (and no earlier one), sent from a class the destination's
// authorization lets in, expecting the route's destinations and shares.
// What cannot be tested is a report line.
func (c *converter) generateTests() []trafficTest {
	g := &testGen{c: c, names: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s := c.mesh.Services[name]
		if s.Proxy != model.ProxySidecar {
			continue
		}
		for _, v := range s.VersionNames() {
			g.callers = append(g.callers, caller{class: "sidecar/" + s.Namespace + "/" + name + "/" + v, service: name,
				namespace: s.Namespace, principal: c.principal(s.Namespace, cmp.Or(s.ServiceAccount, name))})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		g.service(c.mesh.Services[name])
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Gateways)) {
		if gw := c.mesh.Gateways[name]; gw.Kind == model.GatewayIngress {
			g.gateway(gw)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.mesh.External)) {
		g.external(c.mesh.External[name])
	}
	return g.tests
}

// principal is a workload's identity in Istio's form: its SPIFFE id
// without the scheme.
func (c *converter) principal(ns, sa string) string {
	return strings.TrimPrefix(c.mesh.SPIFFEID(ns, sa), "spiffe://")
}

type testGen struct {
	c       *converter
	callers []caller
	tests   []trafficTest
	names   map[string]bool
}

// noTest reports a route match no test is generated for.
func (g *testGen) noTest(src routeSource, format string, a ...any) {
	src.rep.add(src.n, NoTest, format, a...)
}

func (g *testGen) add(t trafficTest) {
	base := dnsName(t.name)
	name := base
	for i := 2; g.names[name]; i++ {
		name = base + "-" + strconv.Itoa(i)
	}
	g.names[name] = true
	t.name = name
	g.tests = append(g.tests, t)
}

// matchesOf are the alternatives of a route; a route without matches
// has one, the empty (catch-all) match.
func matchesOf(r model.Route) []model.Match {
	if len(r.Match) == 0 {
		return []model.Match{{}}
	}
	return r.Match
}

func testName(owner string, r model.Route, i, j, n int) string {
	name := r.Name
	if name == "" {
		name = "route-" + strconv.Itoa(i)
	}
	name = owner + "-" + name
	if n > 1 {
		name += "-" + strconv.Itoa(j)
	}
	return name
}

// service generates the tests of a service's routes.
func (g *testGen) service(s *model.Service) {
	srcs := g.c.routeSrc["services/"+s.Name]
	for i, r := range s.Routes {
		src := srcs[i]
		port := r.Port
		if port == 0 {
			for _, p := range s.Ports {
				if p.Protocol.IsHTTP() {
					port = p.Number
					break
				}
			}
		}
		if port == 0 {
			g.noTest(src, "service %q has no HTTP port", s.Name)
			continue
		}
		ms := matchesOf(r)
		for j, m := range ms {
			t, why := g.serviceTest(s, i, m, port)
			if why != "" {
				g.noTest(src, "%s", why)
				continue
			}
			t.name = testName(s.Name, r, i, j, len(ms))
			t.source = fmt.Sprintf("%s %s (%s)", src.rep.object, src.n.path, src.n.pos())
			g.add(t)
		}
	}
}

// serviceTest finds a caller and a request for match m of route i.
func (g *testGen) serviceTest(s *model.Service, i int, m model.Match, port int) (trafficTest, string) {
	// Callers whose dependsOn reaches the service (a proxy receives only
	// what it depends on); other services first: a service calling itself
	// proves less.
	var callers []caller
	for _, cl := range g.callers {
		if cl.service != s.Name && g.dependsOn(cl, s.Name) {
			callers = append(callers, cl)
		}
	}
	for _, cl := range g.callers {
		if cl.service == s.Name && g.dependsOn(cl, s.Name) {
			callers = append(callers, cl)
		}
	}
	if len(callers) == 0 {
		return trafficTest{}, "no sidecar class depends on it (dependsOn) to send the request from"
	}
	// A caller whose own identity is allowed; else the first caller with
	// a principal an allow rule names, the identity the test sends.
	var tries []caller
	tries = append(tries, callers...)
	if a := s.Authorization; a != nil {
		for _, r := range a.Allow {
			for _, src := range r.From {
				if src.Principal != "" {
					cl := callers[0]
					cl.principal = src.Principal
					tries = append(tries, cl)
				}
			}
		}
	}
	var lastWhy string
	for _, cl := range tries {
		for _, req := range g.requests(m, s.Authorization, cl, port) {
			req.host = s.Name
			if cl.namespace != s.Namespace {
				req.host = s.Name + "." + s.Namespace
			}
			if why := g.takes(s.Routes, i, req, nil); why != "" {
				lastWhy = why
				continue
			}
			if !allows(s, cl, req) {
				lastWhy = fmt.Sprintf("the authorization of %q lets no sidecar class of the input send this request", s.Name)
				continue
			}
			t := expect(s.Routes[i], s.Name)
			t.from, t.headers = cl.class, req.headers
			t.request = fmt.Sprintf("%s http://%s:%d%s", req.method, req.host, port, req.path)
			own := g.c.mesh.Services[cl.service]
			if cl.principal != g.c.principal(cl.namespace, cmp.Or(own.ServiceAccount, own.Name)) {
				t.principal = "spiffe://" + cl.principal
			}
			return t, ""
		}
	}
	if lastWhy == "" {
		lastWhy = "no request matches it"
	}
	return trafficTest{}, lastWhy
}

// requests are candidate requests for match m, most likely first: what
// m fixes is fixed; the method and path m leaves open are chosen so the
// destination's allow rules for cl let them in.
func (g *testGen) requests(m model.Match, a *model.Authorization, cl caller, port int) []request {
	base := request{method: m.Method, port: port}
	if len(m.Headers) > 0 {
		base.headers = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(m.Headers)) {
			v, ok := sampleMatch(m.Headers[k])
			if !ok {
				return nil
			}
			base.headers[k] = v
		}
	}
	var paths []string
	if m.Path != nil {
		p, ok := sampleMatch(*m.Path)
		if !ok || !strings.HasPrefix(p, "/") {
			return nil
		}
		paths = []string{p}
	}
	var ms []string
	if a != nil {
		for _, r := range a.Allow {
			if !fromMatches(r.From, cl) {
				continue
			}
			if m.Path == nil {
				for _, p := range r.Paths {
					paths = append(paths, samplePath(p))
				}
			}
			ms = append(ms, r.Methods...)
		}
	}
	if m.Path == nil {
		paths = append(paths, "/")
	}
	if base.method == "" {
		ms = append(ms, "GET")
	} else {
		ms = []string{base.method}
	}
	var out []request
	for _, method := range ms {
		for _, p := range paths {
			r := base
			r.method, r.path = method, p
			out = append(out, r)
		}
	}
	return out
}

// sampleMatch is a value a string match accepts.
func sampleMatch(s model.StringMatch) (string, bool) {
	switch {
	case s.Present:
		return "present", true
	case s.Regex != "":
		return sample(s.Regex)
	case s.Prefix != "":
		return s.Prefix, true
	}
	return s.Exact, true
}

// samplePath is a path Istio's path pattern accepts ("/reviews/*",
// "*.js", "*", exact).
func samplePath(p string) string {
	switch {
	case p == "*":
		return "/"
	case strings.HasSuffix(p, "*"):
		return strings.TrimSuffix(p, "*") + "1"
	case strings.HasPrefix(p, "*"):
		return "/a" + strings.TrimPrefix(p, "*")
	}
	return p
}

// takes says why req would not take route i of routes ("" when it does):
// it must match route i and no earlier route on the same port (and, for
// gateways, host).
func (g *testGen) takes(routes []model.Route, i int, req request, hostOK func(model.Route) bool) string {
	applies := func(r model.Route) bool {
		return (r.Port == 0 || r.Port == req.port) && (hostOK == nil || hostOK(r))
	}
	if !applies(routes[i]) || !routeMatches(routes[i], req) {
		return "no request generated for it matches it"
	}
	for j := 0; j < i; j++ {
		if applies(routes[j]) && routeMatches(routes[j], req) {
			return fmt.Sprintf("an earlier route (%d) takes its requests first", j)
		}
	}
	return ""
}

// expect is what route r promises: its destinations' shares (or the
// share a fault aborts), its timeout and retries.
func expect(r model.Route, owner string) trafficTest {
	t := trafficTest{timeout: r.Timeout, retries: r.Retries}
	if a := r.Fault; a != nil && a.Abort != nil && a.Abort.HTTPStatus != 0 && a.Abort.Percent > 0 {
		t.status = a.Abort.HTTPStatus
		if a.Abort.Percent < 100 {
			t.statusPercent = a.Abort.Percent
		}
		return t
	}
	t.to = map[string]float64{}
	for _, d := range r.To {
		if d.Weight == 0 {
			continue
		}
		key := d.External
		if key == "" {
			key = cmp.Or(d.Service, owner)
			if d.Version != "" {
				key += "/" + d.Version
			}
		}
		t.to[key] += float64(d.Weight)
	}
	return t
}

// gateway generates the tests of an ingress gateway's HTTP routes, sent
// from the gateway's class to the listener's host.
func (g *testGen) gateway(gw *model.Gateway) {
	srcs := g.c.routeSrc["gateways/"+gw.Name]
	cl := caller{class: "ingress/" + gw.Name, namespace: gw.Namespace, principal: g.c.principal(gw.Namespace, gw.ServiceAccount)}
	for i, r := range gw.Routes {
		src := srcs[i]
		l := httpListener(gw, r.Port)
		if l == nil {
			g.noTest(src, "a stream route (or no HTTP listener on its port): tests are generated for HTTP routes only")
			continue
		}
		host := l.Hosts[0]
		if len(r.Hosts) > 0 {
			host = r.Hosts[0]
		}
		switch {
		case host == "*":
			host = "gitmesh.test"
		case strings.HasPrefix(host, "*."):
			host = "www" + strings.TrimPrefix(host, "*")
		}
		scheme := "http"
		if l.TLS != nil {
			scheme = "https"
		}
		hostOK := func(o model.Route) bool {
			if len(o.Hosts) == 0 {
				return true
			}
			return slices.Contains(o.Hosts, host)
		}
		ms := matchesOf(r)
		for j, m := range ms {
			var t trafficTest
			why := "no request matches it"
			for _, req := range g.requests(m, nil, cl, l.Port) {
				if why = g.takes(gw.Routes, i, req, hostOK); why != "" {
					continue
				}
				if why = g.gatewayAllowed(r, cl, req); why != "" {
					continue
				}
				t = expect(r, "")
				t.from, t.headers = cl.class, req.headers
				t.request = fmt.Sprintf("%s %s://%s:%d%s", req.method, scheme, host, l.Port, req.path)
				break
			}
			if why != "" {
				g.noTest(src, "%s", why)
				continue
			}
			t.name = testName(gw.Name, r, i, j, len(ms))
			t.source = fmt.Sprintf("%s %s (%s)", src.rep.object, src.n.path, src.n.pos())
			g.add(t)
		}
	}
}

// gatewayAllowed checks the destinations' authorization for the
// gateway's identity.
func (g *testGen) gatewayAllowed(r model.Route, cl caller, req request) string {
	for _, d := range r.To {
		if s := g.c.mesh.Services[d.Service]; s != nil && d.Weight > 0 && !allows(s, cl, req) {
			return fmt.Sprintf("the authorization of %q does not let the gateway (%s) send this request", s.Name, cl.principal)
		}
	}
	return ""
}

// httpListener is the listener an HTTP route on port uses: the route's
// port, else the first listener terminating TLS (what Istio users expose;
// a plain port beside it usually only redirected), else the first http
// listener.
func httpListener(gw *model.Gateway, port int) *model.GatewayListener {
	var plain *model.GatewayListener
	for i := range gw.Listeners {
		l := &gw.Listeners[i]
		if port != 0 && l.Port != port {
			continue
		}
		switch {
		case l.Protocol == model.ProtocolHTTPS && l.TLS != nil && l.TLS.Mode != model.TLSPassthrough:
			return l
		case l.Protocol == model.ProtocolHTTP && plain == nil:
			plain = l
		}
	}
	return plain
}

// external generates a test for an external service reached through an
// egress gateway: from a sidecar, over the gateway hop, to the external.
func (g *testGen) external(x *model.External) {
	var from *caller
	for i := range g.callers {
		if g.dependsOn(g.callers[i], x.Name) {
			from = &g.callers[i]
			break
		}
	}
	if x.Via == "" || from == nil {
		return
	}
	gw := g.c.mesh.Gateways[x.Via]
	for _, p := range x.Ports {
		if p.Protocol != model.ProtocolHTTP {
			continue
		}
		host := x.Hosts[0]
		routed := false
		for _, r := range gw.Routes {
			for _, d := range r.To {
				routed = routed || d.External == x.Name && (len(r.Hosts) == 0 || slices.Contains(r.Hosts, host))
			}
		}
		if !routed {
			continue
		}
		g.add(trafficTest{
			name: x.Name + "-via-" + gw.Name, from: from.class,
			request: fmt.Sprintf("GET http://%s:%d/", host, p.Number),
			to:      map[string]float64{x.Name: 100},
			source:  fmt.Sprintf("external %q through egress gateway %q", x.Name, gw.Name),
		})
		return
	}
}

// testsBlock writes the tests, each with a comment naming its route.
func testsBlock(ts []trafficTest) ast.Expr {
	var elts []ast.Decl
	for _, t := range ts {
		var hs []fld
		for _, k := range slices.Sorted(maps.Keys(t.headers)) {
			hs = append(hs, f(k, str(t.headers[k])))
		}
		var to []fld
		for _, k := range slices.Sorted(maps.Keys(t.to)) {
			to = append(to, f(k, float(t.to[k])))
		}
		var status, statusPct, retries ast.Expr
		if t.status != 0 {
			status = num(t.status)
		}
		if t.statusPercent != 0 {
			statusPct = float(t.statusPercent)
		}
		if r := t.retries; r != nil {
			retries = inline(f("attempts", num(r.Attempts)), f("perTryTimeout", durationExpr(r.PerTryTimeout)))
		}
		body := block(
			f("from", str(t.from)),
			f("request", str(t.request)),
			f("headers", block(hs...)),
			f("principal", optStr(t.principal)),
			f("expect", block(
				f("to", block(to...)),
				f("status", status),
				f("statusPercent", statusPct),
				f("timeout", durationExpr(t.timeout)),
				f("retries", retries),
			)),
		)
		fl := &ast.Field{Label: label(t.name), Value: body}
		ast.AddComment(fl, &ast.CommentGroup{Doc: true, List: []*ast.Comment{{Text: "// " + t.source}}})
		elts = append(elts, fl)
	}
	return &ast.StructLit{Elts: elts}
}

// dependsOn reports whether cl's service lists target (or "*") in
// dependsOn.
func (g *testGen) dependsOn(cl caller, target string) bool {
	s := g.c.mesh.Services[cl.service]
	return s != nil && (s.CallsAll() || slices.Contains(s.DependsOn, target))
}
