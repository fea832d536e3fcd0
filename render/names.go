package render

import (
	"strconv"
	"strings"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
)

// Resource and class names. Every pattern here is listed in NAMES.md; the
// cluster names follow Istio's (`outbound|PORT|SUBSET|HOST`) so operators can
// read Envoy stats and config dumps with the habits they already have.

// Proxy kinds, the first element of a class name. The class and node-id
// grammar is owned by internal/nodeid; these names save render's callers
// an import.
const (
	KindSidecar   = nodeid.KindSidecar
	KindProxyless = nodeid.KindProxyless
	KindIngress   = nodeid.KindIngress
	KindEgress    = nodeid.KindEgress
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
	StatsPort = proxyports.Stats
	// AdminPort is the Envoy admin port the bootstrap must configure.
	AdminPort = proxyports.Admin
	// VirtualOutbound is a sidecar's outbound capture listener on
	// proxyports.Outbound (Istio's name).
	VirtualOutbound = "virtualOutbound"
	// VirtualInbound is a sidecar's inbound capture listener on
	// proxyports.Inbound (Istio's name).
	VirtualInbound = "virtualInbound"
	// HealthListener answers the kubelet's readiness probe on
	// proxyports.Health.
	HealthListener = "0.0.0.0_15021"
	// HealthPath is the readiness probe's path on HealthListener.
	HealthPath = "/healthz/ready"
	// PassthroughCluster dials captured outbound traffic's original
	// destination when mesh.outboundTrafficPolicy is ALLOW_ANY.
	PassthroughCluster = "PassthroughCluster"
	// BlackHoleCluster drops captured outbound traffic no listener matches
	// when mesh.outboundTrafficPolicy is REGISTRY_ONLY.
	BlackHoleCluster = "BlackHoleCluster"
	// InboundPassthroughCluster dials the application on an inbound port no
	// service port names.
	InboundPassthroughCluster = "InboundPassthroughCluster"
	// allowAnyVHost is the last virtual host of a sidecar's outbound route
	// config under ALLOW_ANY: any other Host → PassthroughCluster (Istio's
	// name).
	allowAnyVHost = "allow_any"
	// grpcServerListenerPrefix is grpc-go's default server listener
	// resource name template without the address.
	grpcServerListenerPrefix = "grpc/server?xds.resource.listening_address="
)

// outboundCluster is Istio's `outbound|PORT|SUBSET|HOST`; an empty version
// means every version of the service.
func outboundCluster(port int, version, host string) string {
	return "outbound|" + strconv.Itoa(port) + "|" + version + "|" + host
}

// ParseOutboundCluster reads a name outboundCluster built back into its
// port, version (empty for every version) and host; ok is false for any
// other name. Readers of rendered config (render/traffic) parse it here so
// the grammar has one owner.
func ParseOutboundCluster(name string) (port int, version, host string, ok bool) {
	rest, found := strings.CutPrefix(name, "outbound|")
	if !found {
		return 0, "", "", false
	}
	parts := strings.Split(rest, "|")
	if len(parts) != 3 {
		return 0, "", "", false
	}
	port, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, "", "", false
	}
	return port, parts[1], parts[2], true
}

// inboundCluster is the local application behind a sidecar: `inbound|PORT||`.
func inboundCluster(port int) string { return "inbound|" + strconv.Itoa(port) + "||" }

// inboundListener names a sidecar's inbound side of one service port: the
// prefix of its filter chains in virtualInbound (`inbound|PORT|mtls`) and
// its inline route config. It was a listener's name before capture, hence
// the function name; the chain names kept it so status and drift read the
// same.
func inboundListener(port int) string { return "inbound|" + strconv.Itoa(port) }

// vipListener is a sidecar's outbound listener of a TCP service port on one
// VIP, `VIP_PORT`, as Istio names it.
func vipListener(vip string, port int) string { return vip + "_" + strconv.Itoa(port) }

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

// ProxylessListener is the API listener (and route config) a grpc-go
// client asks for when it dials xds:///HOST:PORT; render/traffic looks
// the target up by it.
func ProxylessListener(host string, port int) string { return hostPort(host, port) }

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

// rbacPolicyName names the RBAC policy of a service's authorization rule
// i: `allow-I` or `deny-I`.
func rbacPolicyName(allow bool, i int) string {
	if allow {
		return "allow-" + strconv.Itoa(i)
	}
	return "deny-" + strconv.Itoa(i)
}

// ParseRBACPolicyName reads a name rbacPolicyName built back into the
// list (allow or deny) and the rule's index; ok is false for any other
// name.
func ParseRBACPolicyName(name string) (allow bool, i int, ok bool) {
	list, idx, found := strings.Cut(name, "-")
	if !found || (list != "allow" && list != "deny") {
		return false, 0, false
	}
	i, err := strconv.Atoi(idx)
	if err != nil {
		return false, 0, false
	}
	return list == "allow", i, true
}

// tracingCluster is the cluster of the tracing collector.
func tracingCluster(provider string) string { return "tracing|" + provider }

// wasmCluster is the cluster Envoy fetches a remote Wasm module through.
func wasmCluster(hostport string) string { return "wasm|" + hostport }
