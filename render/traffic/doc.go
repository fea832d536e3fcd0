// Package traffic evaluates a request on the rendered Envoy configuration
// of a mesh, as the proxies would: capture, listener and filter chain
// selection, the HTTP connection manager, virtual host and route matching,
// weighted clusters, faults, endpoints, the upstream's inbound side and its
// RBAC decision, gateway hops. It answers a traffic test (tests: in the
// mesh repository) and `gitmesh explain` with an Outcome and a trace of
// hops.
//
// It reads render's output, never the CUE model's routing rules, so a render
// bug fails a test. The model is used only for what a workload knows
// outside the proxy config (World: which address a name resolves to, which
// workload owns an endpoint address, a class's SPIFFE identity) and to
// point each hop back at the CUE position that produced it.
//
// Each rule of Envoy's (and grpc-go's) matching it implements cites the
// Envoy source or doc it follows. What it does not model: runtime keys,
// header-controlled faults, outlier ejection, load-balancer choice within
// a cluster (endpoints share a cluster's traffic by weight), delays beyond
// recording them. It is pure: no I/O, clocks or randomness; shares are
// computed, not sampled.
package traffic
