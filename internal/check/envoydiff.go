package check

import (
	"fmt"
	"sort"
	"strings"
)

// rbacDiff finds every RBAC filter config in a listener (HTTP or network,
// however deeply nested in filter chains) and reports principals added to
// or removed from its allow or deny rules: "who may call" is what reviewers
// of an authorization change care about. The principals are then pruned so
// the generic diff reports only the rest (permissions, new policies).
func rbacDiff(l *lines, a, b any) {
	oa, na := map[string]*rbacRules{}, map[string]*rbacRules{}
	collectRBAC(a, "", oa)
	collectRBAC(b, "", na)
	locs := unionSorted(rbacKeys(oa), rbacKeys(na))
	for _, loc := range locs {
		prefix := "RBAC"
		if len(locs) > 1 {
			prefix = "RBAC " + label(loc)
		}
		o, n := oa[loc], na[loc]
		if o == nil || n == nil {
			continue // a whole filter appears or goes: the generic diff says so
		}
		for _, action := range unionSorted(mapKeysSet(o.principals), mapKeysSet(n.principals)) {
			op, np := o.principals[action], n.principals[action]
			for _, p := range sortedSet(np) {
				if !op[p] {
					l.add("%s: principal %s added to %s", prefix, p, action)
				}
			}
			for _, p := range sortedSet(op) {
				if !np[p] {
					l.add("%s: principal %s removed from %s", prefix, p, action)
				}
			}
		}
		o.prune()
		n.prune()
	}
}

// rbacRules is one RBAC filter config's principals per action ("allow",
// "deny", "log"), with the policy objects to prune afterwards.
type rbacRules struct {
	principals map[string]map[string]bool
	policies   []map[string]any
}

func (r *rbacRules) prune() {
	for _, p := range r.policies {
		delete(p, "principals")
	}
}

func collectRBAC(v any, path string, out map[string]*rbacRules) {
	switch x := v.(type) {
	case map[string]any:
		if t, _ := x["@type"].(string); strings.HasSuffix(t, ".rbac.v3.RBAC") {
			rules := obj(x["rules"])
			action := strings.ToLower(str(rules["action"]))
			if action == "" {
				action = "allow" // ALLOW is the enum's zero value, omitted by protojson
			}
			r := &rbacRules{principals: map[string]map[string]bool{action: {}}}
			for _, name := range mapKeys(obj(rules["policies"])) {
				pol := obj(obj(rules["policies"])[name])
				for _, p := range list(pol["principals"]) {
					for _, s := range principal(obj(p)) {
						r.principals[action][s] = true
					}
				}
				r.policies = append(r.policies, pol)
			}
			out[path] = r
			return
		}
		for _, k := range mapKeys(x) {
			collectRBAC(x[k], join(path, k), out)
		}
	case []any:
		for i, e := range x {
			key := fmt.Sprintf("[%d]", i)
			if n, ok := obj(e)["name"].(string); ok && n != "" {
				key = "[" + n + "]"
			}
			collectRBAC(e, path+key, out)
		}
	}
}

// principal describes an RBAC principal the way an AuthorizationPolicy
// names it; "or" lists are flattened so each caller is one entry.
func principal(p map[string]any) []string {
	switch {
	case p == nil:
		return nil
	case p["any"] == true:
		return []string{"any"}
	case p["authenticated"] != nil:
		pn := obj(field(p, "authenticated", "principal_name"))
		switch {
		case pn == nil:
			return []string{"any authenticated"}
		case pn["exact"] != nil:
			return []string{str(pn["exact"])}
		case pn["prefix"] != nil:
			return []string{str(pn["prefix"]) + "*"}
		case pn["suffix"] != nil:
			return []string{"*" + str(pn["suffix"])}
		}
		return []string{show(pn)}
	case p["or_ids"] != nil:
		var out []string
		for _, id := range list(field(p, "or_ids", "ids")) {
			out = append(out, principal(obj(id))...)
		}
		return out
	case p["and_ids"] != nil:
		var parts []string
		for _, id := range list(field(p, "and_ids", "ids")) {
			parts = append(parts, strings.Join(principal(obj(id)), "|"))
		}
		return []string{strings.Join(parts, " and ")}
	case p["not_id"] != nil:
		return []string{"not " + strings.Join(principal(obj(p["not_id"])), "|")}
	}
	for _, k := range []string{"direct_remote_ip", "remote_ip", "source_ip"} {
		if c := obj(p[k]); c != nil {
			return []string{str(c["address_prefix"]) + "/" + orDefault(str(c["prefix_len"]), "32")}
		}
	}
	return []string{show(p)}
}

func rbacKeys(m map[string]*rbacRules) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func mapKeysSet(m map[string]map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// clusterDiff describes the load balancer, TLS and static endpoints of a
// cluster; circuit breakers and outlier detection read well enough through
// the generic diff with their labels.
func clusterDiff(l *lines, a, b map[string]any) {
	if a == nil || b == nil {
		return
	}
	if o, n := orDefault(str(a["lb_policy"]), "ROUND_ROBIN"), orDefault(str(b["lb_policy"]), "ROUND_ROBIN"); o != n {
		l.add("load balancer %s→%s", o, n)
	}
	delete(a, "lb_policy")
	delete(b, "lb_policy")
	ot, nt := obj(a["transport_socket"]), obj(b["transport_socket"])
	switch {
	case ot == nil && nt != nil:
		l.add("TLS added%s", sanSuffix(nt))
		delete(b, "transport_socket")
	case ot != nil && nt == nil:
		l.add("TLS removed: traffic is now plain text")
		delete(a, "transport_socket")
	case ot != nil && nt != nil:
		if o, n := str(field(ot, "typed_config", "sni")), str(field(nt, "typed_config", "sni")); o != n {
			l.add("TLS SNI %s→%s", orNone(o), orNone(n))
		}
		if o, n := strings.Join(sans(ot), ", "), strings.Join(sans(nt), ", "); o != n {
			l.add("TLS peer identity %s→%s", orNone(o), orNone(n))
		}
		for _, ts := range []map[string]any{ot, nt} {
			delete(obj(ts["typed_config"]), "sni")
			delete(obj(field(ts, "typed_config", "common_tls_context", "combined_validation_context", "default_validation_context")),
				"match_typed_subject_alt_names")
		}
	}
	if oa, na := obj(a["load_assignment"]), obj(b["load_assignment"]); oa != nil && na != nil {
		endpointsDiff(l, "static ", oa, na)
		genericDiff(l, "load_assignment", oa, na)
		delete(a, "load_assignment")
		delete(b, "load_assignment")
	}
}

func sans(ts map[string]any) []string {
	var out []string
	for _, m := range list(field(ts, "typed_config", "common_tls_context", "combined_validation_context",
		"default_validation_context", "match_typed_subject_alt_names")) {
		out = append(out, str(field(m, "matcher", "exact")))
	}
	return out
}

func sanSuffix(ts map[string]any) string {
	if s := sans(ts); len(s) > 0 {
		return " (peer " + strings.Join(s, ", ") + ")"
	}
	return ""
}

// endpointsDiff reports endpoints added, removed or reweighted by
// address:port across localities, then prunes them so the generic diff
// only sees locality-level changes and other endpoint fields.
func endpointsDiff(l *lines, prefix string, a, b map[string]any) {
	if a == nil || b == nil {
		return
	}
	oe, ne := endpointMap(a), endpointMap(b)
	for _, addr := range unionSorted(mapKeysAny(oe), mapKeysAny(ne)) {
		o, n := obj(oe[addr]), obj(ne[addr])
		switch {
		case o == nil:
			l.add("%sendpoint %s added", prefix, addr)
		case n == nil:
			l.add("%sendpoint %s removed", prefix, addr)
		default:
			ow, nw := orDefault(str(o["load_balancing_weight"]), "1"), orDefault(str(n["load_balancing_weight"]), "1")
			if ow != nw {
				l.add("%sendpoint %s weight %s→%s", prefix, addr, ow, nw)
			}
			delete(o, "load_balancing_weight")
			delete(n, "load_balancing_weight")
			delete(obj(o["endpoint"]), "address")
			delete(obj(n["endpoint"]), "address")
			genericDiff(l, prefix+"endpoint "+addr, o, n)
		}
	}
	for _, side := range []map[string]any{a, b} {
		for _, loc := range list(side["endpoints"]) {
			delete(obj(loc), "lb_endpoints")
		}
	}
}

func endpointMap(cla map[string]any) map[string]any {
	out := map[string]any{}
	for _, loc := range list(cla["endpoints"]) {
		zone := str(field(loc, "locality", "zone"))
		for _, e := range list(obj(loc)["lb_endpoints"]) {
			sa := obj(field(e, "endpoint", "address", "socket_address"))
			addr := str(sa["address"]) + ":" + str(sa["port_value"])
			if sa == nil {
				addr = show(field(e, "endpoint"))
			}
			if zone != "" {
				addr = zone + "/" + addr
			}
			out[addr] = e
		}
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
