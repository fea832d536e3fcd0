package render

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Resource and class names. Every pattern here is listed in NAMES.md; the
// cluster names follow Istio's (`outbound|PORT|SUBSET|HOST`) so operators can
// read Envoy stats and config dumps with the habits they already have.

// Proxy kinds, the first element of a class name.
const (
	KindSidecar   = "sidecar"
	KindProxyless = "proxyless"
	KindIngress   = "ingress"
	KindEgress    = "egress"
)

// Well-known names shared by every proxy.
const (
	// SecretDefault is the SDS name of a workload's own certificate and key.
	SecretDefault = "default"
	// SecretRootCA is the SDS name of the mesh's trust bundle.
	SecretRootCA = "ROOTCA"
	// CertProviderInstance is the grpc-go certificate provider instance (from
	// the proxyless client's bootstrap) that supplies both the identity and
	// the roots of proxyless workloads.
	CertProviderInstance = "default"
	// StatsListener serves Envoy's Prometheus stats on every Envoy proxy.
	StatsListener = "0.0.0.0_15090"
	// StatsCluster is the admin interface the stats listener forwards to.
	StatsCluster = "prometheus_stats"
	// StatsPort is the stats listener's port, as in Istio.
	StatsPort = 15090
	// AdminPort is the Envoy admin port the bootstrap must configure.
	AdminPort = 15000
	// grpcServerListenerPrefix is grpc-go's default server listener
	// resource name template without the address.
	grpcServerListenerPrefix = "grpc/server?xds.resource.listening_address="
)

// SidecarClass is the class of one version of a sidecar service.
func SidecarClass(ns, svc, version string) string {
	return KindSidecar + "/" + ns + "/" + svc + "/" + version
}

// ProxylessClass is the class of one version of a proxyless gRPC service.
func ProxylessClass(ns, svc, version string) string {
	return KindProxyless + "/" + ns + "/" + svc + "/" + version
}

// GatewayClass is the class of an ingress or egress gateway.
func GatewayClass(kind, gateway string) string { return kind + "/" + gateway }

// ParseNodeID splits an xDS node id into its proxy class and instance name:
// "sidecar/default/reviews/v2/reviews-v2-7f9c" → ("sidecar/default/reviews/v2",
// "reviews-v2-7f9c"). It rejects ids whose kind is unknown, whose class has the
// wrong number of parts, or that have an empty part, because a node with a
// malformed id must never receive some other proxy's config.
func ParseNodeID(id string) (class, instance string, err error) {
	if id == "" {
		return "", "", errors.New("empty node id")
	}
	parts := strings.Split(id, "/")
	for i, p := range parts {
		if p == "" {
			return "", "", fmt.Errorf("node id %q: empty part %d", id, i+1)
		}
	}
	var want int
	switch parts[0] {
	case KindSidecar, KindProxyless:
		want = 5 // kind/ns/svc/version/instance
	case KindIngress, KindEgress:
		want = 3 // kind/gateway/instance
	default:
		return "", "", fmt.Errorf("node id %q: unknown proxy kind %q (want sidecar, proxyless, ingress or egress)", id, parts[0])
	}
	if len(parts) != want {
		return "", "", fmt.Errorf("node id %q: %s ids have %d parts separated by \"/\", got %d", id, parts[0], want, len(parts))
	}
	return strings.Join(parts[:want-1], "/"), parts[want-1], nil
}

// outboundCluster is Istio's `outbound|PORT|SUBSET|HOST`; an empty version
// means every version of the service.
func outboundCluster(port int, version, host string) string {
	return "outbound|" + strconv.Itoa(port) + "|" + version + "|" + host
}

// inboundCluster is the local application behind a sidecar: `inbound|PORT||`.
func inboundCluster(port int) string { return "inbound|" + strconv.Itoa(port) + "||" }

// inboundListener is a sidecar's listener for one service port.
func inboundListener(port int) string { return "inbound|" + strconv.Itoa(port) }

// outboundListener is a sidecar's (or gateway's) listener for one port
// number on all addresses, as Istio names it.
func outboundListener(port int) string { return "0.0.0.0_" + strconv.Itoa(port) }

// outboundRouteConfig is a sidecar's RDS route config for one port number.
func outboundRouteConfig(port int) string { return strconv.Itoa(port) }

// gatewayRouteConfig is a gateway's RDS route config for one listener port.
func gatewayRouteConfig(port int) string { return "http." + strconv.Itoa(port) }

// hostPort is `HOST:PORT`: proxyless API listener, route config and virtual
// host names.
func hostPort(host string, port int) string { return host + ":" + strconv.Itoa(port) }

// grpcServerListener is the name grpc-go's xDS server asks for when it
// listens on 0.0.0.0:PORT with the default name template.
func grpcServerListener(port int) string {
	return grpcServerListenerPrefix + "0.0.0.0:" + strconv.Itoa(port)
}

// egressSNI is the SNI a sidecar sends to the egress gateway so the gateway
// knows which external host and port the mTLS stream is for (Istio's form).
func egressSNI(port int, host string) string {
	return "outbound_." + strconv.Itoa(port) + "_._." + host
}

// meshSNI is the SNI a client sends to a mesh workload, Istio style.
func meshSNI(port int, version, host string) string {
	return "outbound_." + strconv.Itoa(port) + "_." + version + "_." + host
}

// tracingCluster is the cluster of the tracing collector.
func tracingCluster(provider string) string { return "tracing|" + provider }

// wasmCluster is the cluster Envoy fetches a remote Wasm module through.
func wasmCluster(hostport string) string { return "wasm|" + hostport }
