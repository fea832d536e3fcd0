package istioimport

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// peerAuth is a PeerAuthentication waiting to be applied: Istio's
// precedence (workload over namespace over mesh) needs all of them.
type peerAuth struct {
	o        *object
	mode     model.MTLSMode
	level    int // 0 mesh, 1 namespace, 2 workload
	services []string
	at       node
}

// targets returns the services a policy applies to: those its selector's
// labels select, or every service of its namespace (of the mesh in the
// root namespace), and the scope level (0 mesh, 1 namespace, 2
// workload). A selector that picks only some versions of a service,
// which gitmesh cannot express, applies the policy to the whole service
// (reported).
func (c *converter) targets(o *object) (svcs []string, level int) {
	sel := o.spec.get("selector").get("matchLabels")
	labels := sel.strMap()
	if len(labels) == 0 {
		if o.namespace == c.opts.RootNamespace {
			return slices.Sorted(maps.Keys(c.mesh.Services)), 0
		}
		for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
			if c.mesh.Services[name].Namespace == o.namespace {
				svcs = append(svcs, name)
			}
		}
		if len(svcs) > 0 {
			o.rep.approx(o.root.get("metadata").get("namespace"), "a namespace-wide policy: applied to each service of namespace %q (%s)", o.namespace, strings.Join(svcs, ", "))
		}
		return svcs, 1
	}
	var partial []string
	for _, name := range slices.Sorted(maps.Keys(c.mesh.Services)) {
		s := c.mesh.Services[name]
		if s.Namespace != o.namespace && o.namespace != c.opts.RootNamespace {
			continue
		}
		if subset(labels, c.svc[name].selector) {
			svcs = append(svcs, name)
			continue
		}
		for _, v := range s.VersionNames() {
			if subset(labels, merge(c.svc[name].selector, s.Versions[v].Labels)) {
				svcs = append(svcs, name)
				partial = append(partial, name+"/"+v)
				break
			}
		}
	}
	if len(partial) > 0 {
		o.rep.approx(sel, "selects only some versions (%s): gitmesh applies the policy to the whole service", strings.Join(partial, ", "))
	}
	if len(svcs) == 0 {
		o.rep.drop(sel, "selects no service of the input: the policy is not converted")
	}
	return svcs, 2
}

func subset(want, have map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

// peerAuthentication records a PeerAuthentication's mode for
// applyPolicies.
func (c *converter) peerAuthentication(o *object) {
	mt := o.spec.get("mtls").get("mode")
	mode := model.MTLSMode(mt.str())
	switch mode {
	case model.MTLSStrict, model.MTLSPermissive, model.MTLSDisable:
	case "", "UNSET":
		o.rep.note(o.spec, "mode UNSET inherits: nothing to convert")
		c.converted[o] = true
		return
	default:
		o.rep.drop(mt, "unknown mTLS mode %q", mt.str())
		return
	}
	svcs, level := c.targets(o)
	if level > 0 && len(svcs) == 0 {
		return
	}
	c.peerAuths = append(c.peerAuths, peerAuth{o: o, mode: mode, level: level, services: svcs, at: mt})
}

// applyPolicies applies PeerAuthentications, widest first so narrower
// ones override, as in Istio. Without a mesh-wide one the mesh is
// PERMISSIVE, Istio's default (gitmesh's own default is STRICT).
func (c *converter) applyPolicies() {
	c.mesh.Mesh.MTLS = model.MTLSPermissive
	meshSet := false
	slices.SortStableFunc(c.peerAuths, func(a, b peerAuth) int { return a.level - b.level })
	set := map[string]int{}
	for _, pa := range c.peerAuths {
		if pa.level == 0 {
			if meshSet {
				pa.o.rep.drop(pa.at, "a second mesh-wide PeerAuthentication: the first one read wins")
				continue
			}
			meshSet = true
			c.mesh.Mesh.MTLS = pa.mode
			c.origin("mesh.cue", pa.o)
			continue
		}
		for _, name := range pa.services {
			if l, ok := set[name]; ok && l == pa.level {
				pa.o.rep.drop(pa.at, "service %q already has its mTLS mode from another PeerAuthentication of the same scope", name)
				continue
			}
			set[name] = pa.level
			c.mesh.Services[name].MTLS = pa.mode
			c.origin("services/"+name+".cue", pa.o)
		}
	}
	if !meshSet {
		c.report = append(c.report, Finding{Field: "mesh.mtls", Kind: Note,
			Message: "mesh.mtls is PERMISSIVE, Istio's default without a mesh-wide PeerAuthentication (gitmesh's default is STRICT)"})
	}
}

// authorizationPolicy folds an AuthorizationPolicy into the authorization
// of the services it selects. Where a rule cannot be carried over exactly,
// the conversion fails closed: an ALLOW rule with a condition gitmesh
// cannot express is dropped (it allows less), a DENY rule loses the
// condition (it denies more). Either way the report says so.
func (c *converter) authorizationPolicy(o *object) {
	for _, f := range []string{"targetRef", "targetRefs"} {
		if n := o.spec.get(f); n.ok() {
			o.rep.drop(o.spec, "%s: the policy is not converted", reason(f))
			return
		}
	}
	act := o.spec.get("action")
	allow := true
	switch act.str() {
	case "", "ALLOW":
	case "DENY":
		allow = false
	default:
		o.rep.drop(o.spec, "action %q (an external or audit provider) has no gitmesh equivalent: the policy is not converted", act.str())
		return
	}
	svcs, _ := c.targets(o)
	if len(svcs) == 0 {
		return
	}
	var rules []model.AuthzRule
	rulesNode := o.spec.get("rules")
	for _, r := range rulesNode.list() {
		rules = append(rules, c.authzRule(r, allow, o)...)
	}
	for _, name := range svcs {
		s := c.mesh.Services[name]
		if s.Authorization == nil {
			s.Authorization = &model.Authorization{}
		}
		if allow {
			if len(rules) == 0 {
				// An ALLOW policy that matches nothing denies every
				// request no other ALLOW policy allows; gitmesh's empty
				// allow list allows all, so it becomes a deny-all rule
				// that the service's other allow rules cannot override.
				c.allowNothing[name] = o
				continue
			}
			s.Authorization.Allow = appendRules(s.Authorization.Allow, rules)
		} else {
			s.Authorization.Deny = appendRules(s.Authorization.Deny, rules)
		}
		c.origin("services/"+name+".cue", o)
	}
}

// finishAuthorization turns "allow nothing" policies into a deny-all rule
// on services that have no allow rules at all; with allow rules present,
// Istio's semantics already hold.
func (c *converter) finishAuthorization() {
	for _, name := range slices.Sorted(maps.Keys(c.allowNothing)) {
		o := c.allowNothing[name]
		s := c.mesh.Services[name]
		if len(s.Authorization.Allow) == 0 {
			s.Authorization.Deny = appendRules(s.Authorization.Deny, []model.AuthzRule{{}})
			o.rep.approx(o.spec, "an ALLOW policy without rules (allow nothing) becomes a deny rule matching every request to %q", name)
		}
		c.origin("services/"+name+".cue", o)
	}
}

// authzRule converts one rule: Istio ORs its from entries and its to
// entries and ANDs the two; gitmesh rules AND from, methods, paths and
// ports, so each to entry becomes one rule with every source.
func (c *converter) authzRule(r node, allow bool, o *object) []model.AuthzRule {
	failClosed := func(n node, what string) {
		if allow {
			o.rep.drop(n, "%s: the ALLOW rule is dropped (it allows less than in Istio)", what)
		} else {
			o.rep.drop(n, "%s: the DENY rule ignores the condition (it denies more than in Istio)", what)
		}
	}
	var froms []model.Source
	fromBroken := false
	for _, f := range r.get("from").list() {
		srcs, ok := c.sources(f.get("source"), o, failClosed)
		if !ok {
			fromBroken = true
			continue
		}
		froms = append(froms, srcs...)
	}
	if allow && fromBroken && len(froms) == 0 {
		r.markAll()
		return nil
	}
	if !allow && fromBroken {
		froms = nil // the condition is ignored: any caller
	}
	for _, w := range r.get("when").list() {
		failClosed(w, "conditions (when) have no gitmesh equivalent")
		if allow {
			r.markAll()
			return nil
		}
	}
	tos := r.get("to").list()
	if len(tos) == 0 {
		return []model.AuthzRule{{From: froms}}
	}
	var out []model.AuthzRule
	for _, t := range tos {
		op := t.get("operation")
		rule := model.AuthzRule{From: froms, Methods: op.get("methods").strs(), Paths: op.get("paths").strs()}
		for _, p := range op.get("ports").list() {
			n, err := strconv.Atoi(p.str())
			if err != nil {
				failClosed(p, fmt.Sprintf("port %q is not a number", p.str()))
				continue
			}
			rule.Ports = append(rule.Ports, n)
		}
		bad := false
		for _, f := range []string{"hosts", "notHosts", "notMethods", "notPaths", "notPorts"} {
			if n := op.get(f); n.ok() {
				failClosed(n, fmt.Sprintf("operation.%s has no gitmesh equivalent", f))
				bad = true
			}
		}
		if bad && allow {
			continue
		}
		out = append(out, rule)
	}
	return out
}

// sources converts one Istio source. Its fields AND; gitmesh's sources
// are one field each, so principals and namespaces together keep the
// principals in those namespaces. A principal ending in "/*" is a
// namespace. ok is false when the source has a condition gitmesh cannot
// express (reported through failClosed).
func (c *converter) sources(s node, o *object, failClosed func(node, string)) ([]model.Source, bool) {
	ok := true
	for _, f := range []string{"notPrincipals", "notNamespaces", "ipBlocks", "notIpBlocks", "remoteIpBlocks",
		"notRemoteIpBlocks", "requestPrincipals", "notRequestPrincipals", "serviceAccounts", "notServiceAccounts"} {
		if n := s.get(f); n.ok() {
			failClosed(n, fmt.Sprintf("source.%s has no gitmesh equivalent (sources are principals and namespaces)", f))
			ok = false
		}
	}
	nss := s.get("namespaces").list()
	var out []model.Source
	for _, p := range s.get("principals").list() {
		pr := strings.TrimPrefix(p.str(), "spiffe://")
		switch {
		case pr == "*":
			failClosed(p, `principal "*" (any authenticated caller) has no gitmesh equivalent`)
			ok = false
			continue
		case strings.HasSuffix(pr, "/sa/*") || strings.HasSuffix(pr, "/*"):
			ns := principalNS(pr)
			if ns == "" || strings.Contains(strings.TrimSuffix(pr, "/*"), "*") {
				failClosed(p, fmt.Sprintf("principal pattern %q has no gitmesh equivalent", p.str()))
				ok = false
				continue
			}
			o.rep.approx(p, "principal pattern %q becomes namespace %q", p.str(), ns)
			out = append(out, model.Source{Namespace: ns})
		case strings.Contains(pr, "*"):
			failClosed(p, fmt.Sprintf("principal pattern %q has no gitmesh equivalent", p.str()))
			ok = false
			continue
		default:
			if len(nss) > 0 && !slices.Contains(s.get("namespaces").strs(), principalNS(pr)) {
				o.rep.approx(p, "principal %q is not in the source's namespaces: left out", p.str())
				continue
			}
			if !c.knownPrincipal(pr) {
				o.rep.note(p, "principal %q is the identity of no service or gateway of the input (service accounts come from Deployments, StatefulSets and DaemonSets): the rule matches callers outside the import only", p.str())
			}
			out = append(out, model.Source{Principal: pr})
		}
	}
	if !s.has("principals") {
		for _, n := range nss {
			ns := n.str()
			if strings.Contains(ns, "*") {
				failClosed(n, fmt.Sprintf("namespace pattern %q has no gitmesh equivalent", ns))
				ok = false
				continue
			}
			if !c.namespaceExists(ns) {
				failClosed(n, fmt.Sprintf("namespace %q has no service or gateway in the input, and gitmesh sources name known namespaces only", ns))
				ok = false
				continue
			}
			out = append(out, model.Source{Namespace: ns})
		}
	}
	return out, ok
}

// principalNS is the namespace in "TRUST_DOMAIN/ns/NS/sa/SA".
func principalNS(p string) string {
	parts := strings.Split(p, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "ns" {
			return parts[i+1]
		}
	}
	return ""
}

func (c *converter) namespaceExists(ns string) bool {
	for _, s := range c.mesh.Services {
		if s.Namespace == ns {
			return true
		}
	}
	for _, g := range c.mesh.Gateways {
		if g.Namespace == ns {
			return true
		}
	}
	return false
}

// appendRules appends the rules not already in list: two policies that
// convert to the same rule (a deny-all twice) need it once.
func appendRules(list, rules []model.AuthzRule) []model.AuthzRule {
	for _, r := range rules {
		if !slices.ContainsFunc(list, func(x model.AuthzRule) bool { return reflect.DeepEqual(x, r) }) {
			list = append(list, r)
		}
	}
	return list
}

// knownPrincipal reports whether a service or gateway of the output runs
// as principal p ("TRUST_DOMAIN/ns/NS/sa/SA").
func (c *converter) knownPrincipal(p string) bool {
	for _, s := range c.mesh.Services {
		if p == c.principal(s.Namespace, cmp.Or(s.ServiceAccount, s.Name)) {
			return true
		}
	}
	for _, g := range c.mesh.Gateways {
		if p == c.principal(g.Namespace, cmp.Or(g.ServiceAccount, g.Name)) {
			return true
		}
	}
	return false
}
