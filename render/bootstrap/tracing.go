package bootstrap

import "github.com/gitmesh/gitmesh/internal/nodeid"

// TracingService is the service name a proxy of class c reports its spans
// under, and so the name to search the tracing UI for (the console's trace
// links, reconciler/graph). It is the one owner of that rule.
//
// Envoy's Zipkin tracer names the local endpoint of every span after the
// proxy's node.cluster: its driver builds the tracer with
// local_info.clusterName() (source/extensions/tracers/zipkin/
// zipkin_tracer_impl.cc), and clusterName is the bootstrap's node.cluster
// (or --service-cluster). So the bootstraps set node.cluster to this name,
// not to the class: node.id carries the proxy's identity (the xDS server
// admits and serves a node by its id only), and node.metadata keeps the
// class. The name follows Istio's convention, SERVICE.NAMESPACE
// ("reviews.default": versions of a service are one tracing service, as
// Jaeger and Kiali expect); a gateway reports its name. Envoy's
// OpenTelemetry tracer does not read node.cluster: injection sets
// OTEL_RESOURCE_ATTRIBUTES=service.name=<this name> on the Envoy container,
// which the environment resource detector render configures reads
// (reconciler/inject, render/filters.go).
func TracingService(c nodeid.Class) string {
	if c.Gateway != "" {
		return c.Gateway
	}
	return c.Service + "." + c.Namespace
}
