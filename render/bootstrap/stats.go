package bootstrap

import (
	metricsv3 "github.com/envoyproxy/go-control-plane/envoy/config/metrics/v3"

	"github.com/gitmesh/gitmesh/internal/nodeid"
)

// Stats tags every Envoy bootstrap adds to all of the proxy's stats, so a
// Prometheus series says which proxy class emitted it: Envoy's own cluster
// stats name only the destination (envoy_cluster_name
// "outbound|9080|v2|reviews.default.svc.cluster.local"), and Prometheus'
// instance label is an address, not a workload. reconciler/promrates and
// deploy/grafana query by these labels; renaming one breaks them.
//
// They are StatsConfig.stats_tags with fixed_value, "a fixed tag value for
// the tag_name" applied to every stat
// (https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/metrics/v3/stats.proto#config-metrics-v3-tagspecifier).
// Envoy's rules for the names: a tag_name without regex or fixed_value is
// looked up among Envoy's default extractors, and the defaults all start
// with "envoy." (well_known_names.h), a name given twice makes the config
// invalid; so gitmesh's names carry their own "gitmesh_" prefix and never
// "envoy.". Envoy's /stats/prometheus writes a tag name as the label name
// after replacing characters Prometheus does not allow with "_"; these names
// are already valid Prometheus label names ([a-zA-Z_][a-zA-Z0-9_]*), so the
// label is the tag name unchanged.
const (
	// StatsTagKind is the proxy kind: sidecar, ingress or egress.
	StatsTagKind = "gitmesh_kind"
	// StatsTagNamespace is a sidecar's namespace (absent for gateways).
	StatsTagNamespace = "gitmesh_namespace"
	// StatsTagService is a sidecar's service, or a gateway's name.
	StatsTagService = "gitmesh_service"
	// StatsTagVersion is a sidecar's version (absent for gateways).
	StatsTagVersion = "gitmesh_version"
)

// statsConfig tags every stat with the proxy's class. Empty values are left
// out: a gateway has no namespace or version.
func statsConfig(c nodeid.Class) *metricsv3.StatsConfig {
	svc := c.Service
	if c.Gateway != "" {
		svc = c.Gateway
	}
	var tags []*metricsv3.TagSpecifier
	for _, t := range [][2]string{
		{StatsTagKind, c.Kind},
		{StatsTagNamespace, c.Namespace},
		{StatsTagService, svc},
		{StatsTagVersion, c.Version},
	} {
		if t[1] == "" {
			continue
		}
		tags = append(tags, &metricsv3.TagSpecifier{
			TagName:  t[0],
			TagValue: &metricsv3.TagSpecifier_FixedValue{FixedValue: t[1]},
		})
	}
	return &metricsv3.StatsConfig{StatsTags: tags}
}
