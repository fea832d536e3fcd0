package envoystrict

import (
	"math"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// Rule: weighted clusters add up.
//
// Envoy: source/common/router/weighted_cluster_specifier.cc, the
// WeightedClusterSpecifierPlugin constructor: the sum of the weights must
// fit a uint32 ("The sum of weights of all weighted clusters of route {}
// exceeds 4294967295") and be greater than 0 ("Sum of weights in the
// weighted_cluster must be greater than 0."). Envoy releases before
// total_weight was deprecated (source/common/router/config_impl.cc,
// RouteEntryImplBase) required the sum to equal total_weight ("Sum of
// weights in the weighted_cluster should add up to {}"); a route that sets
// total_weight is held to that, so the config loads on old and new
// Envoys alike.
//
// tcp_proxy draws a weighted cluster with Random::RandomUtility::
// selectOneWeighted over the same uint64 sum (source/common/tcp_proxy/
// tcp_proxy.cc, Config::getRegularRouteFromEntries); a zero total leaves
// nothing to pick, and an overflowing one is rejected here for the same
// reason as for routes.

// weights checks a route's weighted clusters.
func (rw *routeWalk) weights(a *routev3.RouteAction) {
	wc := a.GetWeightedClusters()
	if wc == nil {
		return
	}
	var total uint64
	for _, c := range wc.Clusters {
		total += uint64(c.GetWeight().GetValue())
	}
	switch {
	case total > math.MaxUint32:
		rw.errorf(CodeWeights, "weights total %d, more than %d", total, uint64(math.MaxUint32))
	case total == 0:
		rw.errorf(CodeWeights, "weights total 0")
	//nolint:staticcheck // total_weight is deprecated; mirrored for old Envoys.
	case wc.GetTotalWeight() != nil && uint64(wc.GetTotalWeight().GetValue()) != total:
		rw.errorf(CodeWeights, "weights total %d, not total_weight %d", total, wc.GetTotalWeight().GetValue())
	}
}

// tcpWeights checks a tcp_proxy's weighted clusters.
func (w *walk) tcpWeights(tp *tcpproxyv3.TcpProxy) {
	wc := tp.GetWeightedClusters()
	if wc == nil {
		return
	}
	var total uint64
	for _, c := range wc.GetClusters() {
		total += uint64(c.Weight)
	}
	switch {
	case total > math.MaxUint32:
		w.errorf(CodeWeights, "tcp_proxy weights total %d, more than %d", total, uint64(math.MaxUint32))
	case total == 0:
		w.errorf(CodeWeights, "tcp_proxy weights total 0")
	}
}
