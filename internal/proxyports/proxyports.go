// Package proxyports owns the fixed port numbers and the proxy user id of a
// gitmesh sidecar pod. Render binds and names listeners with them, the
// capture rules (gitmesh capture) exclude and redirect with them, and the
// bootstrap and injection use them: one owner, so a port moved in one place
// cannot leave traffic captured into a listener that no longer exists.
//
// The numbers are Istio's (https://istio.io/latest/docs/ops/deployment/application-requirements/#ports-used-by-istio),
// so dashboards, probes and firewall rules written for an Istio mesh keep
// working.
package proxyports

const (
	// Admin is Envoy's admin interface, bound to 127.0.0.1 only.
	Admin = 15000
	// Outbound is the virtual outbound listener: iptables redirects a pod's
	// outbound TCP here and Envoy hands each connection to the listener of
	// its original destination (use_original_dst).
	Outbound = 15001
	// Inbound is the virtual inbound listener: iptables redirects a pod's
	// inbound TCP here; filter chains match the original destination port.
	Inbound = 15006
	// AgentStatus is gitmesh agent's status port (/healthz/ready answers
	// 200 once the workload certificate and the bootstrap are written), for
	// the kubelet's startup probe of the injected agent container; Istio's
	// pilot-agent status port. It is never captured.
	AgentStatus = 15020
	// Health is the sidecar's readiness port (/healthz/ready), for a
	// kubelet probe. It is never captured.
	Health = 15021
	// Stats serves Envoy's Prometheus stats (/stats/prometheus).
	Stats = 15090
	// ProxyUID is the user id the proxy runs as. Its own outbound traffic is
	// never captured (otherwise it would loop back into itself).
	ProxyUID = 1337
	// ProxyGID is the group id the proxy runs as.
	ProxyGID = 1337
)

// Reserved lists the ports a sidecar pod's proxy owns: an application port
// or an exclusion that collides with one is refused, and inbound capture
// never redirects them.
func Reserved() []int {
	return []int{Admin, Outbound, Inbound, AgentStatus, Health, Stats}
}
