package policies

import "github.com/gitmesh/gitmesh/schema/model"

// checkMTLS reports mTLS modes that break what the mesh declares (GM0401).
//
// Semantics, chosen to flag only what is certain to fail:
//   - A service with proxy "none" has no sidecar and no certificate, so it
//     cannot call a service whose effective mode (its own, else the mesh's)
//     is STRICT. Only explicit dependsOn entries count as calls: the default
//     dependsOn ["*"] scopes configuration, it does not declare a call, and
//     flagging it would flag every legacy workload in a STRICT mesh.
//   - A service whose effective mode is DISABLE receives plain text, so no
//     caller has an identity: authorization rules that match callers by
//     service, namespace or principal can never match. Allow rules would
//     then reject everyone and deny rules nobody, which is never what the
//     author meant. Rules that match only methods, paths or ports are fine.
func checkMTLS(c *checker) {
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Proxy != model.ProxyNone {
			continue
		}
		for i, d := range s.DependsOn {
			t := c.service(d)
			if t == nil || d == name || c.effectiveMTLS(t) != model.MTLSStrict {
				continue
			}
			c.report(CodeMTLSBlocksCaller, model.Index(model.Path("services", name, "dependsOn"), i),
				"service %q has no proxy and cannot present a mesh certificate, but %q requires mtls %q",
				name, d, model.MTLSStrict)
		}
	}
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Authorization == nil || c.effectiveMTLS(s) != model.MTLSDisable {
			continue
		}
		ap := model.Path("services", name, "authorization")
		for _, list := range []struct {
			key   string
			rules []model.AuthzRule
		}{{"allow", s.Authorization.Allow}, {"deny", s.Authorization.Deny}} {
			for i, r := range list.rules {
				if len(r.From) == 0 {
					continue
				}
				c.report(CodeMTLSBlocksCaller, model.Index(ap+"."+list.key, i)+".from",
					"rule matches callers by identity, but mtls is %q, so callers present none", model.MTLSDisable)
			}
		}
	}
}
