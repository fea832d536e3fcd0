package policies

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// checkTrafficTests checks what a traffic test names before render runs
// it: a request that does not parse (GM1101), a class the mesh does not
// render (GM1102) and a destination that does not exist (GM1103). Without
// these, a typo in a test would surface as a confusing failure ("expected
// reviews/v4 100%, got reviews/v2 100%") instead of as the typo it is.
func checkTrafficTests(c *checker) {
	for _, name := range c.m.TestNames() {
		t := c.m.Tests[name]
		if t == nil {
			continue
		}
		base := model.Path("tests", name)
		if _, err := model.ParseRequest(t.Request); err != nil {
			c.report(CodeTestRequest, base+".request", "%v", err)
		}
		if msg := c.classProblem(t.From); msg != "" {
			c.report(CodeTestFrom, base+".from", "%s", msg)
		}
		for _, dest := range sortedKeysOf(t.Expect.To) {
			if msg := c.destProblem(dest); msg != "" {
				c.report(CodeTestTo, model.Path("tests", name, "expect", "to", dest), "%s", msg)
			}
		}
	}
}

// classProblem says why class is not a class the mesh renders, or "".
func (c *checker) classProblem(class string) string {
	cl, err := nodeid.ParseClass(class)
	if err != nil {
		return err.Error()
	}
	switch cl.Kind {
	case nodeid.KindSidecar, nodeid.KindProxyless:
		s := c.service(cl.Service)
		if s == nil {
			return "no service " + quote(cl.Service)
		}
		if s.Namespace != cl.Namespace {
			return "service " + quote(cl.Service) + " is in namespace " + quote(s.Namespace) + ", not " + quote(cl.Namespace)
		}
		if string(s.Proxy) != cl.Kind {
			return "service " + quote(cl.Service) + " has proxy " + quote(string(s.Proxy)) + ", so it has no " + cl.Kind + " class"
		}
		if s.Versions[cl.Version] == nil {
			return "service " + quote(cl.Service) + " has no version " + quote(cl.Version)
		}
	case nodeid.KindIngress, nodeid.KindEgress:
		g := c.gateway(cl.Gateway)
		if g == nil {
			return "no gateway " + quote(cl.Gateway)
		}
		if string(g.Kind) != cl.Kind {
			return "gateway " + quote(cl.Gateway) + " is an " + string(g.Kind) + " gateway"
		}
	}
	return ""
}

// destProblem says why dest ("SERVICE/VERSION", "SERVICE" or an external)
// names nothing, or "".
func (c *checker) destProblem(dest string) string {
	svc, ver, hasVer := strings.Cut(dest, "/")
	if s := c.service(svc); s != nil {
		if hasVer && s.Versions[ver] == nil {
			return "service " + quote(svc) + " has no version " + quote(ver)
		}
		return ""
	}
	if !hasVer && c.external(svc) != nil {
		return ""
	}
	return "no service or external service " + quote(svc)
}

func quote(s string) string { return strconv.Quote(s) }

func sortedKeysOf[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
