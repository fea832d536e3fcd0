package promrates

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// The PromQL gitmesh asks Prometheus for the graph's rates. This file owns
// every query and the label names they read; deploy/grafana's mesh
// dashboard uses the same metrics and labels.
//
// Envoy (sidecars and gateways; /stats/prometheus on the 15090 listener):
//
//   - envoy_cluster_upstream_rq_total: requests per upstream cluster.
//   - envoy_cluster_upstream_rq_xx{envoy_response_code_class="5"}: 5xx
//     answers per upstream cluster.
//
// The destination is the cluster name (envoy_cluster_name), which render
// names outbound|PORT|VERSION|FQDN (render/NAMES.md). Only outbound
// clusters count: inbound|PORT|| is the sidecar's own application, whose
// callers are counted at their own proxies. The source is the proxy that
// emitted the series: render/bootstrap tags every stat with the proxy's
// class (gitmesh_kind, gitmesh_namespace, gitmesh_service,
// gitmesh_version, bootstrap.StatsTag*).
//
// Proxyless gRPC (grpc-go's OpenTelemetry metrics, exported to Prometheus;
// examples/grpc-canary/telemetry):
//
//   - grpc_client_attempt_duration_seconds_count: finished call attempts,
//     by grpc_status, grpc_target and the optional label
//     grpc_lb_backend_service. Errors are attempts whose grpc_status is not
//     OK.
//
// The destination version is known at the client: with
// grpc.lb.backend_service enabled, grpc-go's xDS balancer labels each
// attempt with the cluster it picked, the same outbound|PORT|VERSION|FQDN
// name Envoy reports. A client without that label is counted by
// grpc_target (xds:///greeter:50051) alone: destination service, no
// version. The source is the client's OpenTelemetry resource, exported as
// labels service_namespace, service_name and service_version.
// grpc.client.attempt.started carries no status or backend label, and
// grpc.server.call.duration (per server version) has no caller, so neither
// can name an edge; the dashboards show them.
const (
	// Envoy labels.
	labelEnvoyCluster = "envoy_cluster_name"
	// Proxyless labels.
	labelGRPCBackend   = "grpc_lb_backend_service"
	labelGRPCTarget    = "grpc_target"
	labelOTelNamespace = "service_namespace"
	labelOTelService   = "service_name"
	labelOTelVersion   = "service_version"
)

// query is one PromQL expression and how its series name an edge.
type query struct {
	name   string
	expr   string
	family family
	errors bool
}

// family says which labels a series' source and destination are in.
type family int

const (
	familyEnvoy family = iota
	familyGRPC
)

// queries returns the four expressions for a rate window.
func queries(window time.Duration) []query {
	w := model.Duration(window).String()
	envoyBy := strings.Join([]string{bootstrap.StatsTagKind, bootstrap.StatsTagNamespace, bootstrap.StatsTagService,
		bootstrap.StatsTagVersion, labelEnvoyCluster}, ", ")
	grpcBy := strings.Join([]string{labelOTelNamespace, labelOTelService, labelOTelVersion, labelGRPCBackend, labelGRPCTarget}, ", ")
	return []query{
		{name: "envoy requests", family: familyEnvoy, expr: fmt.Sprintf(
			`sum by (%s) (rate(envoy_cluster_upstream_rq_total{envoy_cluster_name=~"outbound\\|.*"}[%s]))`, envoyBy, w)},
		{name: "envoy errors", family: familyEnvoy, errors: true, expr: fmt.Sprintf(
			`sum by (%s) (rate(envoy_cluster_upstream_rq_xx{envoy_cluster_name=~"outbound\\|.*",envoy_response_code_class="5"}[%s]))`, envoyBy, w)},
		{name: "grpc requests", family: familyGRPC, expr: fmt.Sprintf(
			`sum by (%s) (rate(grpc_client_attempt_duration_seconds_count[%s]))`, grpcBy, w)},
		{name: "grpc errors", family: familyGRPC, errors: true, expr: fmt.Sprintf(
			`sum by (%s) (rate(grpc_client_attempt_duration_seconds_count{grpc_status!="OK"}[%s]))`, grpcBy, w)},
	}
}
