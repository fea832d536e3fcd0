package envoystrict

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestRuleTimeouts(t *testing.T) {
	timed := func(f func(a *routev3.RouteAction)) *routev3.RouteConfiguration {
		rc := routeConfig("r", "c", []string{"a"})
		f(rc.VirtualHosts[0].Routes[0].GetRoute())
		return rc
	}
	runCases(t, []ruleCase{
		{name: "negative timeout", code: CodeTimeout, want: "negative timeout",
			own: with(t, timed(func(a *routev3.RouteAction) { a.Timeout = &durationpb.Duration{Seconds: -1} }))},
		{name: "negative per-try timeout", code: CodeTimeout, want: "negative per-try timeout",
			own: with(t, timed(func(a *routev3.RouteAction) {
				a.RetryPolicy = &routev3.RetryPolicy{PerTryTimeout: &durationpb.Duration{Nanos: -5}}
			}))},
		{name: "zero timeout disables it", own: with(t, timed(func(a *routev3.RouteAction) { a.Timeout = &durationpb.Duration{} }))},
		{name: "positive timeout", own: with(t, timed(func(a *routev3.RouteAction) { a.Timeout = &durationpb.Duration{Seconds: 15} }))},
	})
}
