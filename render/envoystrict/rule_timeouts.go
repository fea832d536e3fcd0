package envoystrict

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Rule: route durations are not negative.
//
// Envoy reads a route's timeout and per-try timeout with
// PROTOBUF_GET_MS_OR_DEFAULT, which goes through DurationUtil::
// durationToMilliseconds (source/common/protobuf/utility.cc); that calls
// validateDuration and throws "Invalid duration: Expected positive
// duration" for a negative one, so the whole route configuration is
// refused (source/common/router/config_impl.cc, RouteEntryImplBase).

// timeouts checks a route's durations.
func (rw *routeWalk) timeouts(a *routev3.RouteAction) {
	neg := func(d *durationpb.Duration) bool { return d != nil && (d.Seconds < 0 || d.Nanos < 0) }
	if neg(a.GetTimeout()) {
		rw.errorf(CodeTimeout, "negative timeout")
	}
	if neg(a.GetRetryPolicy().GetPerTryTimeout()) {
		rw.errorf(CodeTimeout, "negative per-try timeout")
	}
	if neg(a.GetIdleTimeout()) {
		rw.errorf(CodeTimeout, "negative idle timeout")
	}
}
