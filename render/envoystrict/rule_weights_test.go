package envoystrict

import (
	"google.golang.org/protobuf/proto"
	"math"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRuleWeights(t *testing.T) {
	weighted := func(total uint32, ws ...uint32) *routev3.RouteConfiguration {
		rc := routeConfig("r", "c", []string{"a"})
		wc := &routev3.WeightedCluster{}
		for _, w := range ws {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{Name: "c", Weight: wrapperspb.UInt32(w)})
		}
		if total > 0 {
			wc.TotalWeight = wrapperspb.UInt32(total) //nolint:staticcheck // deprecated field under test
		}
		rc.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
		return rc
	}
	tcpWeighted := func(ws ...uint32) proto.Message {
		l := tcpListener(t, "t", "0.0.0.0", 81, "c")
		wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
		for _, w := range ws {
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: "c", Weight: w})
		}
		tp := &tcpproxyv3.TcpProxy{StatPrefix: "t", ClusterSpecifier: &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}}
		l.FilterChains[0].Filters[0] = tcpFilterOf(t, tp)
		return l
	}
	runCases(t, []ruleCase{
		{name: "weights total 0", code: CodeWeights, want: `route "r" in "r-vh0": weights total 0`, own: with(t, weighted(0, 0, 0))},
		{name: "weights overflow uint32", code: CodeWeights, want: "more than 4294967295", own: with(t, weighted(0, math.MaxUint32, 1))},
		{name: "total_weight not met", code: CodeWeights, want: "not total_weight 100", own: with(t, weighted(100, 90, 20))},
		{name: "90/10", own: with(t, weighted(0, 90, 10))},
		{name: "total_weight met", own: with(t, weighted(100, 90, 10))},
		{name: "one zero weight is a drain", own: with(t, weighted(0, 100, 0))},
		{name: "tcp weights total 0", code: CodeWeights, want: "tcp_proxy weights total 0", own: with(t, tcpWeighted(0, 0))},
		{name: "tcp 50/50", own: with(t, tcpWeighted(50, 50))},
	})
}
