package envoystrict

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// Rule: a cluster's discovery type fits its other settings.
//
//   - EDS needs a config source for its assignment: EdsClusterImpl
//     (source/extensions/clusters/eds/eds.cc) subscribes with
//     eds_cluster_config.eds_config, and the subscription factory
//     (source/common/config/subscription_factory_impl.cc) refuses an empty
//     one ("Missing config source specifier in
//     envoy::config::core::v3::ConfigSource").
//   - ORIGINAL_DST takes the CLUSTER_PROVIDED load balancer and no load
//     assignment: OriginalDstClusterFactory::createClusterImpl
//     (source/extensions/clusters/original_dst/original_dst_cluster.cc):
//     "cluster: LB policy {} is not valid for Cluster type {}. Only
//     'CLUSTER_PROVIDED' is allowed with cluster type 'ORIGINAL_DST'" and
//     "ORIGINAL_DST clusters must have no load assignment configured".
//   - CLUSTER_PROVIDED is the load balancer of cluster types that bring
//     their own (ORIGINAL_DST here); on a STATIC, STRICT_DNS, LOGICAL_DNS or
//     EDS cluster ClusterFactoryImplBase::create
//     (source/common/upstream/cluster_factory_impl.cc) refuses it ("cluster:
//     LB policy {} is not valid for Cluster type {}").
//   - LOGICAL_DNS resolves exactly one name: LogicalDnsCluster
//     (source/extensions/clusters/logical_dns/logical_dns_cluster.cc)
//     refuses anything else ("LOGICAL_DNS clusters must have a single
//     locality_lb_endpoint and a single lb_endpoint").

// clusterType checks one cluster.
func (w *walk) clusterType(c *clusterv3.Cluster) {
	t := c.GetType()
	if c.GetClusterType() != nil {
		return // a custom cluster type validates itself
	}
	switch t {
	case clusterv3.Cluster_EDS:
		if c.GetEdsClusterConfig().GetEdsConfig() == nil {
			w.errorf(CodeCluster, "EDS cluster without eds_cluster_config.eds_config")
		}
	case clusterv3.Cluster_ORIGINAL_DST:
		if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
			w.errorf(CodeCluster, "ORIGINAL_DST cluster with lb_policy %s (only CLUSTER_PROVIDED is allowed)", c.GetLbPolicy())
		}
		if c.GetLoadAssignment() != nil {
			w.errorf(CodeCluster, "ORIGINAL_DST cluster with a load assignment")
		}
	case clusterv3.Cluster_LOGICAL_DNS:
		eps := c.GetLoadAssignment().GetEndpoints()
		if len(eps) != 1 || len(eps[0].GetLbEndpoints()) != 1 {
			w.errorf(CodeCluster, "LOGICAL_DNS cluster needs exactly one locality with one endpoint")
		}
	}
	if t != clusterv3.Cluster_ORIGINAL_DST && c.GetLbPolicy() == clusterv3.Cluster_CLUSTER_PROVIDED {
		w.errorf(CodeCluster, "%s cluster with lb_policy CLUSTER_PROVIDED", t)
	}
}
