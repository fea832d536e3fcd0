package check

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gitmesh/gitmesh/render"
)

// differ computes readable diffs of changed resources. Each semantic diff
// describes the fields it knows in the words of the mesh (weights, timeouts,
// principals, endpoints) and deletes them from both JSON trees; the generic
// diff then reports whatever is left, so nothing is lost.
type differ struct {
	// cache holds diffs by type, name and both versions: versions are
	// content hashes, so one pair is diffed once however many proxies
	// share it.
	cache map[string][]string
}

func (d *differ) diff(typeURL string, o, n *render.Resource) []string {
	key := typeURL + "\x00" + o.Name + "\x00" + o.Version + "\x00" + n.Version
	if ls, ok := d.cache[key]; ok {
		return ls
	}
	ls := diffResource(typeURL, o, n)
	d.cache[key] = ls
	return ls
}

func diffResource(typeURL string, o, n *render.Resource) []string {
	l := &lines{}
	mo := protojson.MarshalOptions{UseProtoNames: true}
	ob, err1 := mo.Marshal(o.Message)
	nb, err2 := mo.Marshal(n.Message)
	if err1 != nil || err2 != nil {
		l.add("content changed (version %s → %s)", o.Version, n.Version)
		return l.result()
	}
	a, err1 := parseJSON(ob)
	b, err2 := parseJSON(nb)
	if err1 != nil || err2 != nil {
		l.add("content changed (version %s → %s)", o.Version, n.Version)
		return l.result()
	}
	switch typeURL {
	case resource.RouteType:
		routeConfigDiff(l, obj(a), obj(b))
	case resource.ListenerType:
		rbacDiff(l, a, b)
	case resource.ClusterType:
		clusterDiff(l, obj(a), obj(b))
	case resource.EndpointType:
		endpointsDiff(l, "", obj(a), obj(b))
	}
	genericDiff(l, "", a, b)
	if len(l.out) == 0 && l.dropped == 0 {
		// Only field order or an unknown-to-JSON detail differs.
		l.add("content changed (version %s → %s)", o.Version, n.Version)
	}
	return l.result()
}

// routeConfigDiff describes virtual hosts and routes by name, and for each
// route its destinations, timeout and retries.
func routeConfigDiff(l *lines, a, b map[string]any) {
	if a == nil || b == nil {
		return
	}
	av, _ := byName(list(a["virtual_hosts"]))
	bv, _ := byName(list(b["virtual_hosts"]))
	if av == nil || bv == nil {
		return
	}
	for _, name := range unionSorted(mapKeysAny(av), mapKeysAny(bv)) {
		ov, nv := obj(av[name]), obj(bv[name])
		p := fmt.Sprintf("vhost %q", name)
		switch {
		case ov == nil:
			l.add("%s added (%s)", p, describeRoutes(nv))
			continue
		case nv == nil:
			l.add("%s removed", p)
			continue
		}
		routesDiff(l, p, list(ov["routes"]), list(nv["routes"]))
		delete(ov, "routes")
		delete(nv, "routes")
		genericDiff(l, p, ov, nv)
	}
	delete(a, "virtual_hosts")
	delete(b, "virtual_hosts")
}

func routesDiff(l *lines, p string, a, b []any) {
	an, aok := byName(a)
	bn, bok := byName(b)
	if !aok || !bok {
		an, bn = byIndex(a), byIndex(b)
	}
	order := []string{}
	seen := map[string]bool{}
	for _, s := range [][]any{b, a} {
		for i, e := range s {
			n, ok := obj(e)["name"].(string)
			if !aok || !bok || !ok {
				n = fmt.Sprintf("#%d", i)
			}
			if !seen[n] {
				seen[n] = true
				order = append(order, n)
			}
		}
	}
	for _, n := range order {
		o, nw := obj(an[n]), obj(bn[n])
		rp := fmt.Sprintf("%s route %q", p, n)
		switch {
		case o == nil:
			l.add("%s added: %s", rp, destination(obj(nw["route"])))
		case nw == nil:
			l.add("%s removed", rp)
		default:
			routeDiff(l, rp, o, nw)
		}
	}
}

func byIndex(s []any) map[string]any {
	m := make(map[string]any, len(s))
	for i, e := range s {
		m[fmt.Sprintf("#%d", i)] = e
	}
	return m
}

// routeDiff describes one route's action and leaves the rest to the generic
// diff under the route's path.
func routeDiff(l *lines, p string, o, n map[string]any) {
	oa, na := obj(o["route"]), obj(n["route"])
	if oa != nil && na != nil {
		var parts []string
		if s := destinationDiff(oa, na); s != "" {
			parts = append(parts, s)
		}
		if ot, nt := orNone(oa["timeout"]), orNone(na["timeout"]); ot != nt {
			parts = append(parts, "timeout "+ot+"→"+nt)
		}
		if or, nr := retries(obj(oa["retry_policy"])), retries(obj(na["retry_policy"])); or != nr {
			parts = append(parts, "retries "+or+"→"+nr)
		}
		if len(parts) > 0 {
			l.add("%s: %s", p, strings.Join(parts, "; "))
		}
		for _, k := range []string{"cluster", "weighted_clusters", "timeout"} {
			delete(oa, k)
			delete(na, k)
		}
		if rp, np := obj(oa["retry_policy"]), obj(na["retry_policy"]); rp != nil && np != nil {
			for _, k := range []string{"num_retries", "per_try_timeout"} {
				delete(rp, k)
				delete(np, k)
			}
		}
	}
	genericDiff(l, p, o, n)
}

// destinationDiff says how a route's destinations changed: per-cluster
// weights when both sides split traffic, else old and new destination.
func destinationDiff(a, b map[string]any) string {
	ow, nw := weights(a), weights(b)
	if ow == nil || nw == nil {
		if od, nd := destination(a), destination(b); od != nd {
			return "destination " + od + " → " + nd
		}
		return ""
	}
	short := shortener(mapKeysInt(ow), mapKeysInt(nw))
	var parts []string
	for _, c := range unionSorted(mapKeysInt(ow), mapKeysInt(nw)) {
		o, ook := ow[c]
		n, nok := nw[c]
		switch {
		case !ook:
			parts = append(parts, fmt.Sprintf("%s added %s", short(c), n))
		case !nok:
			parts = append(parts, fmt.Sprintf("%s removed (was %s)", short(c), o))
		case o != n:
			parts = append(parts, fmt.Sprintf("%s %s→%s", short(c), o, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "weights " + strings.Join(parts, ", ")
}

// weights maps cluster name to weight for a weighted route, nil otherwise.
func weights(a map[string]any) map[string]string {
	wc := obj(a["weighted_clusters"])
	if wc == nil {
		return nil
	}
	out := map[string]string{}
	for _, c := range list(wc["clusters"]) {
		w := str(obj(c)["weight"])
		if w == "" {
			w = "0"
		}
		out[str(obj(c)["name"])] = w
	}
	return out
}

// destination prints where a route action sends traffic.
func destination(a map[string]any) string {
	if a == nil {
		return "no forwarding action"
	}
	if c, ok := a["cluster"].(string); ok {
		return c
	}
	if w := weights(a); w != nil {
		names := mapKeysInt(w)
		sort.Strings(names)
		short := shortener(names, nil)
		parts := make([]string, len(names))
		for i, n := range names {
			parts[i] = short(n) + " " + w[n]
		}
		return "weights " + strings.Join(parts, ", ")
	}
	return show(a)
}

// shortener names mesh clusters by their subset when all clusters involved
// are versions of the same service port (outbound|PORT|SUBSET|HOST), as
// people say "v1 50, v3 50"; otherwise by full name.
func shortener(a, b []string) func(string) string {
	common := ""
	for _, n := range append(append([]string{}, a...), b...) {
		port, subset, host, ok := render.ParseOutboundCluster(n)
		if !ok || subset == "" {
			return func(s string) string { return s }
		}
		k := strconv.Itoa(port) + "|" + host
		if common != "" && common != k {
			return func(s string) string { return s }
		}
		common = k
	}
	return func(s string) string { _, subset, _, _ := render.ParseOutboundCluster(s); return subset }
}

func describeRoutes(vh map[string]any) string {
	rs := list(vh["routes"])
	if len(rs) == 1 {
		return "→ " + destination(obj(obj(rs[0])["route"]))
	}
	return fmt.Sprintf("%d routes", len(rs))
}

func retries(rp map[string]any) string {
	if rp == nil {
		return "none"
	}
	n := str(rp["num_retries"])
	if n == "" {
		n = "1"
	}
	if t := str(rp["per_try_timeout"]); t != "" {
		return n + "×" + t
	}
	return n
}

func orNone(v any) string {
	if s := str(v); s != "" {
		return s
	}
	return "none"
}

func mapKeysAny(m map[string]any) []string { return mapKeys(m) }

func mapKeysInt(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
