package policies

import (
	"fmt"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkProxyless warns about what grpc-go's xDS client silently ignores
// (GM0207) and rejects what render cannot give a proxyless client at all
// (GM0208). A service's routes run in its callers, so the question is not
// whether the service is proxyless but whether a proxyless service calls it
// (its dependsOn names it, or is "*"): render puts the routes into that
// caller's API listener (render/proxyless.go).
//
// What grpc-go reads of a route is in xds/internal/xdsclient/xdsresource
// unmarshal_rds.go (routesProtoToSlice, generateRetryConfig), after gRFC A28
// (routing) and A44 (retries):
//   - matches: path, header matchers and runtime_fraction; header matchers
//     see request metadata only, and :method is not metadata, so a `method`
//     match never matches (every such route is dead for grpc-go);
//   - action: cluster or weighted_clusters, max_stream_duration (render
//     turns `timeout` into it), retry_policy and hash_policy. Nothing else:
//     request_headers_to_add/remove and response header edits (render does
//     not even emit them for gRPC), request_mirror_policies, prefix_rewrite
//     and host_rewrite are never read;
//   - retry_policy: only the retry_on tokens cancelled, deadline-exceeded,
//     internal, resource-exhausted and unavailable (others are dropped
//     silently; with none left there is no retry), num_retries and back-off;
//     per_try_timeout is not read;
//   - endpoint load_balancing_weight is ignored by the round_robin policy
//     grpc-go picks endpoints with.
//
// Wasm filters are an Envoy feature: a proxyless workload runs none.
func checkProxyless(c *checker) {
	callers := c.proxylessCallers()
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || len(callers[name]) == 0 {
			continue
		}
		who := callerPhrase(callers[name])
		base := model.Path("services", name)
		for i, r := range s.Routes {
			c.proxylessRoute(model.Index(base+".routes", i), r, who)
		}
		for _, v := range s.VersionNames() {
			ver := s.Versions[v]
			if ver == nil {
				continue
			}
			for i, ep := range ver.Endpoints {
				if ep.Weight > 1 {
					c.report(CodeProxylessIgnores, model.Index(model.Path("services", name, "versions", v, "endpoints"), i)+".weight",
						"%s ignore endpoint weights (grpc-go's round_robin treats every endpoint alike)", who)
				}
			}
		}
	}
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Proxy != model.ProxyProxyless {
			continue
		}
		for i, d := range s.DependsOn {
			if c.external(d) != nil && c.service(d) == nil {
				c.report(CodeProxylessIgnores, model.Index(model.Path("services", name, "dependsOn"), i),
					"service %q is proxyless gRPC, which gets mesh clusters only, so external service %q is not reachable through xDS", name, d)
			}
		}
	}
	for _, name := range c.m.ExtensionNames() {
		x := c.m.Extensions[name]
		if x == nil {
			continue
		}
		for i, sn := range x.Services {
			if s := c.service(sn); s != nil && s.Proxy == model.ProxyProxyless {
				c.report(CodeProxylessIgnores, model.Index(model.Path("extensions", name, "services"), i),
					"service %q is proxyless gRPC, which runs no Wasm filters, so extension %q does not apply to it", sn, name)
			}
		}
	}
}

// proxylessRoute reports the features of one route that proxyless callers
// (described by who) cannot honour.
func (c *checker) proxylessRoute(rp string, r model.Route, who string) {
	for k, m := range r.Match {
		if m.Method != "" {
			c.report(CodeProxylessIgnores, model.Index(rp+".match", k)+".method",
				"%s never match on method (grpc-go does not expose :method to route matching), so this match never applies for them", who)
		}
	}
	for k, d := range r.To {
		if d.External != "" {
			c.report(CodeUnsupported, model.Index(rp+".to", k)+".external",
				"%s cannot route to external service %q (proxyless clients get mesh clusters only)", who, d.External)
		}
	}
	if h := r.Headers; h != nil && (!opsEmpty(h.Request) || !opsEmpty(h.Response)) {
		c.report(CodeProxylessIgnores, rp+".headers", "%s ignore header edits (grpc-go reads no header operations)", who)
	}
	if r.Mirror != nil {
		c.report(CodeProxylessIgnores, rp+".mirror", "%s ignore mirrors (grpc-go reads no request_mirror_policies)", who)
	}
	if r.Rewrite != nil && (r.Rewrite.Prefix != "" || r.Rewrite.Authority != "") {
		c.report(CodeProxylessIgnores, rp+".rewrite", "%s ignore rewrites (grpc-go reads no prefix or authority rewrite)", who)
	}
	if rt := r.Retries; rt != nil {
		if bad := nonGRPCRetryOn(rt.RetryOn); len(bad) > 0 {
			c.report(CodeProxylessIgnores, rp+".retries.retryOn",
				"%s ignore retryOn %s (grpc-go retries only on cancelled, deadline-exceeded, internal, resource-exhausted, unavailable)",
				who, quoteList(bad))
		}
		if rt.PerTryTimeout > 0 {
			c.report(CodeProxylessIgnores, rp+".retries.perTryTimeout", "%s ignore perTryTimeout (grpc-go reads no per_try_timeout)", who)
		}
	}
}

// grpcRetryOn are the retry_on tokens grpc-go's generateRetryConfig knows.
var grpcRetryOn = map[string]bool{
	"cancelled": true, "deadline-exceeded": true, "internal": true, "resource-exhausted": true, "unavailable": true,
}

// nonGRPCRetryOn returns the tokens of a retry_on list grpc-go drops.
func nonGRPCRetryOn(retryOn string) []string {
	var out []string
	for _, t := range strings.Split(retryOn, ",") {
		t = strings.TrimSpace(strings.ToLower(t))
		if t != "" && !grpcRetryOn[t] {
			out = append(out, t)
		}
	}
	return out
}

// opsEmpty reports whether a header edit does nothing.
func opsEmpty(o *model.HeaderOps) bool {
	return o == nil || len(o.Set) == 0 && len(o.Add) == 0 && len(o.Remove) == 0
}

// proxylessCallers maps each service to the proxyless services that may
// call it, in name order: those whose dependsOn names it or holds "*".
func (c *checker) proxylessCallers() map[string][]string {
	out := map[string][]string{}
	for _, name := range c.ix.services {
		s := c.service(name)
		if s == nil || s.Proxy != model.ProxyProxyless {
			continue
		}
		// A service calls itself too when its dependsOn says so ("*"
		// included): render gives its proxyless class a client listener
		// for its own service (render/ir.go depsOf), routes and all.
		if s.CallsAll() {
			for _, t := range c.ix.services {
				out[t] = append(out[t], name)
			}
			continue
		}
		for _, t := range c.ix.services {
			if c.ix.deps[name][t] {
				out[t] = append(out[t], name)
			}
		}
	}
	return out
}

// callerPhrase names proxyless callers for a message:
// `proxyless gRPC callers ("a", "b")`.
func callerPhrase(callers []string) string {
	return fmt.Sprintf("proxyless gRPC callers (%s)", quoteList(callers))
}
