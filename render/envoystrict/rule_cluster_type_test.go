package envoystrict

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

func TestRuleClusterType(t *testing.T) {
	typed := func(name string, typ clusterv3.Cluster_DiscoveryType, lb clusterv3.Cluster_LbPolicy, la *endpointv3.ClusterLoadAssignment) *clusterv3.Cluster {
		return &clusterv3.Cluster{Name: name, ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: typ}, LbPolicy: lb, LoadAssignment: la}
	}
	eps := func(n int) *endpointv3.ClusterLoadAssignment {
		la := &endpointv3.ClusterLoadAssignment{ClusterName: "x", Endpoints: []*endpointv3.LocalityLbEndpoints{{}}}
		for i := 0; i < n; i++ {
			la.Endpoints[0].LbEndpoints = append(la.Endpoints[0].LbEndpoints, &endpointv3.LbEndpoint{})
		}
		return la
	}
	runCases(t, []ruleCase{
		{name: "EDS without a config source", code: CodeCluster, want: "without eds_cluster_config.eds_config",
			own: with(t, &clusterv3.Cluster{Name: "c", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}})},
		{name: "ORIGINAL_DST with round robin", code: CodeCluster, want: "lb_policy ROUND_ROBIN",
			own: with(t, typed("PassthroughCluster", clusterv3.Cluster_ORIGINAL_DST, clusterv3.Cluster_ROUND_ROBIN, nil))},
		{name: "ORIGINAL_DST with a load assignment", code: CodeCluster, want: "with a load assignment",
			own: with(t, typed("PassthroughCluster", clusterv3.Cluster_ORIGINAL_DST, clusterv3.Cluster_CLUSTER_PROVIDED, eps(1)))},
		{name: "CLUSTER_PROVIDED on STATIC", code: CodeCluster, want: "STATIC cluster with lb_policy CLUSTER_PROVIDED",
			own: with(t, typed("s", clusterv3.Cluster_STATIC, clusterv3.Cluster_CLUSTER_PROVIDED, eps(1)))},
		{name: "LOGICAL_DNS with two endpoints", code: CodeCluster, want: "exactly one locality with one endpoint",
			own: with(t, typed("d", clusterv3.Cluster_LOGICAL_DNS, clusterv3.Cluster_ROUND_ROBIN, eps(2)))},
		{name: "Istio's PassthroughCluster", own: with(t, typed("PassthroughCluster", clusterv3.Cluster_ORIGINAL_DST, clusterv3.Cluster_CLUSTER_PROVIDED, nil))},
		{name: "STATIC and STRICT_DNS", own: with(t, typed("s", clusterv3.Cluster_STATIC, clusterv3.Cluster_ROUND_ROBIN, eps(2)),
			typed("d", clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LEAST_REQUEST, eps(3)),
			typed("l", clusterv3.Cluster_LOGICAL_DNS, clusterv3.Cluster_ROUND_ROBIN, eps(1)))},
	})
}
