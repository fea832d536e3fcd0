package traffic

import (
	"fmt"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/schema/model"
)

// http runs a request through an HTTP connection manager: its route
// configuration picks a virtual host and a route, then the HTTP filters
// run in their order (fault, RBAC …) and the router takes the route's
// action. authority overrides the Host the virtual host is chosen by
// (grpc-go uses its target).
func (e *evaluator) http(h at, hcm *hcmv3.HttpConnectionManager, c conn, authority string) error {
	if e.req.TCP() {
		e.noRoute(h, "hcm", hcm.GetStatPrefix(), "a TCP connection reached an HTTP connection manager")
		return nil
	}
	rc := hcm.GetRouteConfig()
	src := "inline"
	if r := hcm.GetRds(); r != nil {
		rc, src = h.cfg.Routes[r.GetRouteConfigName()], "RDS"
		if rc == nil {
			e.noRoute(h, "hcm", hcm.GetStatPrefix(), fmt.Sprintf("route config %q (RDS) is not in the config", r.GetRouteConfigName()))
			return nil
		}
	}
	e.hop(h, "hcm", hcm.GetStatPrefix(), "route config "+strconv.Quote(rc.GetName())+" ("+src+")", "")
	if authority == "" {
		authority = e.req.Authority()
	}
	vh, domain := selectVirtualHost(rc.GetVirtualHosts(), authority)
	var route *routev3.Route
	if vh != nil {
		e.hop(h, "virtual host", vh.GetName(), fmt.Sprintf("host %q matches domain %q", authority, domain), e.origins.vhost(h.class, vh.GetName()))
		for _, r := range vh.GetRoutes() {
			// First match wins (route.v3.VirtualHost.routes: "the first
			// route that matches will be used").
			if routeMatches(r.GetMatch(), e.req.Path, e.headers) {
				route = r
				break
			}
		}
		if route != nil {
			e.hop(h, "route", route.GetName(), "first match: "+describeMatch(route.GetMatch()), e.origins.route(h.class, vh.GetName(), route.GetName()))
		}
	}
	for _, f := range hcm.GetHttpFilters() {
		tc := f.GetTypedConfig()
		switch {
		case tc.MessageIs(&faultv3.HTTPFault{}):
			var ok bool
			if h, ok = e.fault(h, f.GetName(), tc, vh, route); !ok {
				return nil
			}
		case tc.MessageIs(&rbachttpv3.RBAC{}):
			var r rbachttpv3.RBAC
			if err := anypb.UnmarshalTo(tc, &r, proto.UnmarshalOptions{}); err != nil {
				return err
			}
			if r.GetRules() == nil && r.GetMatcher() != nil {
				return fmt.Errorf("http filter %q: RBAC matcher trees are not modelled", f.GetName())
			}
			if !e.rbac(h, f.GetName(), r.GetRules(), rbacCtx{principal: h.peer, dstPort: c.dstPort, headers: e.headers, path: e.req.Path}) {
				return nil
			}
		case f.GetName() == "envoy.filters.http.router" || strings.HasSuffix(tc.GetTypeUrl(), "router.v3.Router"):
			return e.router(h, vh, route, c)
		default:
			e.hop(h, "filter", f.GetName(), "passes (not evaluated)", "")
		}
	}
	e.noRoute(h, "hcm", hcm.GetStatPrefix(), "no router filter")
	return nil
}

// describeMatch prints a route match as in config dumps.
func describeMatch(m *routev3.RouteMatch) string {
	var parts []string
	switch p := m.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		parts = append(parts, "prefix "+strconv.Quote(p.Prefix))
	case *routev3.RouteMatch_Path:
		parts = append(parts, "path "+strconv.Quote(p.Path))
	case *routev3.RouteMatch_SafeRegex:
		parts = append(parts, "regex "+strconv.Quote(p.SafeRegex.GetRegex()))
	case *routev3.RouteMatch_PathSeparatedPrefix:
		parts = append(parts, "path_separated_prefix "+strconv.Quote(p.PathSeparatedPrefix))
	}
	for _, hm := range m.GetHeaders() {
		parts = append(parts, "header "+hm.GetName())
	}
	for _, q := range m.GetQueryParameters() {
		parts = append(parts, "query "+q.GetName())
	}
	return strings.Join(parts, ", ")
}

// fault applies the HTTP fault filter (configuration/http/http_filters/
// fault_filter; source/extensions/filters/http/fault/fault_filter.cc):
// the most specific per-filter config (route, then virtual host, keyed by
// the filter's name) replaces the filter's own; a delay is recorded, an
// abort answers its percentage of requests with its status and the rest
// go on. false means every request was aborted.
func (e *evaluator) fault(h at, name string, own *anypb.Any, vh *routev3.VirtualHost, route *routev3.Route) (at, bool) {
	cfg, origin := own, ""
	if a := vh.GetTypedPerFilterConfig()[name]; a != nil {
		cfg = a
	}
	if a := route.GetTypedPerFilterConfig()[name]; a != nil {
		cfg, origin = a, e.origins.routeField(h.class, vh.GetName(), route.GetName(), "fault")
	}
	var f faultv3.HTTPFault
	if err := anypb.UnmarshalTo(cfg, &f, proto.UnmarshalOptions{}); err != nil {
		return h, true
	}
	if d := f.GetDelay(); d != nil {
		if p := fraction(d.GetPercentage()); p > 0 {
			e.hop(h, "fault", name, fmt.Sprintf("delay %s for %s of requests", d.GetFixedDelay().AsDuration(), pct(p)), origin)
		}
	}
	a := f.GetAbort()
	p := fraction(a.GetPercentage())
	if a == nil || p <= 0 {
		return h, true
	}
	code := int(a.GetHttpStatus())
	what := "HTTP " + strconv.Itoa(code)
	if g, ok := a.GetErrorType().(*faultv3.FaultAbort_GrpcStatus); ok {
		// A gRPC abort is HTTP 200 with grpc-status; tests see the
		// gRPC code as the status.
		code, what = int(g.GrpcStatus), "grpc-status "+strconv.Itoa(int(g.GrpcStatus))
	}
	e.hop(h, "fault", name, fmt.Sprintf("abort %s for %s of requests", what, pct(p)), origin)
	e.out.Status[code] += h.share * h.live * p / 100
	h.live *= 1 - p/100
	return h, true
}

// fraction is a FractionalPercent in percent (type/v3/percent.proto).
func fraction(f *typev3.FractionalPercent) float64 {
	if f == nil {
		return 0
	}
	den := map[typev3.FractionalPercent_DenominatorType]float64{
		typev3.FractionalPercent_HUNDRED:      100,
		typev3.FractionalPercent_TEN_THOUSAND: 10000,
		typev3.FractionalPercent_MILLION:      1000000,
	}[f.GetDenominator()]
	return float64(f.GetNumerator()) * 100 / den
}

// envoyDefaultTimeout is RouteAction.timeout's default (route.proto:
// "If not specified, the default is 15s").
const envoyDefaultTimeout = 15 * model.Second

// router takes the route's action (router filter,
// source/common/router/router.cc): no virtual host or route is a 404,
// a direct response answers, a route forwards to its cluster or one of
// its weighted clusters.
func (e *evaluator) router(h at, vh *routev3.VirtualHost, route *routev3.Route, c conn) error {
	switch {
	case vh == nil:
		e.out.NoRoute += h.share
		e.status(h, 404, "virtual host", "", fmt.Sprintf("no virtual host matches %q: 404", e.req.Authority()), "")
		return nil
	case route == nil:
		e.out.NoRoute += h.share
		e.status(h, 404, "route", "", "no route of "+vh.GetName()+" matches: 404", "")
		return nil
	}
	switch a := route.GetAction().(type) {
	case *routev3.Route_DirectResponse:
		e.status(h, int(a.DirectResponse.GetStatus()), "direct response", route.GetName(), "answers "+strconv.Itoa(int(a.DirectResponse.GetStatus())), "")
		return nil
	case *routev3.Route_Redirect:
		code := 301
		e.status(h, code, "redirect", route.GetName(), "redirects", "")
		return nil
	case *routev3.Route_NonForwardingAction:
		// The gRPC server side: the route admits the call to the
		// application.
		e.reached(h, h.dest, true)
		return nil
	case *routev3.Route_Route:
		ra := a.Route
		if h.caller && !e.policyDone {
			e.policyDone = true
			e.recordPolicy(h, ra, e.origins.route(h.class, vh.GetName(), route.GetName()))
		}
		if cl := ra.GetCluster(); cl != "" {
			return e.cluster(h, cl, c)
		}
		wc := ra.GetWeightedClusters()
		if wc == nil {
			return fmt.Errorf("route %q: cluster specifier %T is not modelled", route.GetName(), ra.GetClusterSpecifier())
		}
		// Weighted clusters (route_components.proto WeightedCluster;
		// config_impl.cc picks by a random value below the sum of the
		// weights): each cluster takes weight/sum of the requests.
		total := 0
		for _, w := range wc.GetClusters() {
			total += int(w.GetWeight().GetValue())
		}
		for _, w := range wc.GetClusters() {
			if w.GetWeight().GetValue() == 0 {
				continue
			}
			b := h
			b.share, b.depth = h.share*float64(w.GetWeight().GetValue())/float64(total), h.depth+1
			e.hop(b, "weighted cluster", w.GetName(), fmt.Sprintf("weight %d of %d", w.GetWeight().GetValue(), total), "")
			if err := e.cluster(b, w.GetName(), c); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("route %q: action %T is not modelled", route.GetName(), route.GetAction())
}

// recordPolicy sets the outcome's timeout and retries from the caller's
// route: Envoy's default timeout when unset; a retry policy without
// num_retries retries once (route.proto RetryPolicy.num_retries).
func (e *evaluator) recordPolicy(h at, ra *routev3.RouteAction, origin string) {
	t := envoyDefaultTimeout
	detail := "timeout 15s (Envoy's default)"
	if strings.HasPrefix(h.class, nodeid.KindProxyless+"/") {
		// grpc-go ignores RouteAction.timeout: its deadline is
		// max_stream_duration.grpc_timeout_header_max, else
		// max_stream_duration (xdsresource's unmarshal of RouteAction,
		// gRFC A31); neither set means none.
		msd := ra.GetMaxStreamDuration()
		d := msd.GetGrpcTimeoutHeaderMax()
		if d == nil {
			d = msd.GetMaxStreamDuration()
		}
		t, detail = 0, "no deadline (grpc-go: no max_stream_duration)"
		if d != nil {
			t, detail = fromDuration(d), "deadline "+d.AsDuration().String()+" (max_stream_duration)"
		}
	} else if ra.GetTimeout() != nil {
		t = fromDuration(ra.GetTimeout())
		detail = "timeout " + ra.GetTimeout().AsDuration().String()
		if t == 0 {
			detail += " (disabled)"
		}
	}
	e.out.Timeout = &t
	r := &model.TestRetries{}
	if rp := ra.GetRetryPolicy(); rp != nil {
		r.Attempts = 1
		if rp.GetNumRetries() != nil {
			r.Attempts = int(rp.GetNumRetries().GetValue())
		}
		if rp.GetPerTryTimeout() != nil {
			d := fromDuration(rp.GetPerTryTimeout())
			r.PerTryTimeout = &d
		}
		detail += fmt.Sprintf(", %d retries on %s", r.Attempts, rp.GetRetryOn())
		if rp.GetPerTryTimeout() != nil {
			detail += ", per try " + rp.GetPerTryTimeout().AsDuration().String()
		}
	} else {
		detail += ", no retries"
	}
	e.out.Retries = r
	e.hop(h, "policy", "", detail, origin)
}

func fromDuration(d *durationpb.Duration) model.Duration {
	return model.Duration(d.GetSeconds())*model.Second + model.Duration(d.GetNanos())
}
