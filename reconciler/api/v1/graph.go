package apiv1

// Graph is GET /api/v1/graph: the live revision's mesh as nodes and edges
// for the console, computed from the model the reconciler serves (no
// second source of truth), with each node's health from its proxies' sync
// state and, when Prometheus is configured, measured rates on the edges.
type Graph struct {
	// Revision is the id of the live revision the graph was computed from.
	Revision   string   `json:"revision"`
	Mesh       string   `json:"mesh,omitempty"`
	Namespaces []string `json:"namespaces"`
	Nodes      []Node   `json:"nodes"`
	Edges      []Edge   `json:"edges"`
	// Note says why the graph is empty: no revision loaded yet.
	Note string `json:"note,omitempty"`
	// Rates says whether and how edge rates were measured; absent when no
	// Prometheus is configured.
	Rates *GraphRates `json:"rates,omitempty"`
}

// GraphRates is how the rates on the edges were measured.
type GraphRates struct {
	// Error is why the rates could not be read; the graph is served
	// without them.
	Error string `json:"error,omitempty"`
	// Window is the rate window, in seconds.
	WindowSeconds float64 `json:"windowSeconds,omitempty"`
}

// NodeKind is what a node of the graph is.
type NodeKind string

// Node kinds.
const (
	NodeService  NodeKind = "service"
	NodeGateway  NodeKind = "gateway"
	NodeExternal NodeKind = "external"
)

// Health is a node's or a version's health, from the sync state of every
// proxy of its classes.
type Health string

// Health states, from best to worst; NoProxy when no proxy of the class
// is connected, and Unmanaged for what has no proxy of gitmesh's (an
// external service, a service with proxy: none).
const (
	HealthSynced    Health = "SYNCED"
	HealthStale     Health = "STALE"
	HealthNacked    Health = "NACKED"
	HealthNoProxy   Health = "NO PROXY"
	HealthUnmanaged Health = "UNMANAGED"
)

// Node is a service, a gateway or an external service. ID is
// "KIND/NAME", unique in the graph.
type Node struct {
	ID        string   `json:"id"`
	Kind      NodeKind `json:"kind"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace,omitempty"`
	// Proxy is sidecar, proxyless or none for services; ingress or
	// egress for gateways; empty for external services.
	Proxy    string        `json:"proxy,omitempty"`
	Health   Health        `json:"health"`
	Versions []NodeVersion `json:"versions,omitempty"`
	// Classes are the proxy classes of the node (one per version, or the
	// gateway's), for the proxies view.
	Classes []string `json:"classes,omitempty"`
	// Proxies counts the connected proxies of its classes.
	Proxies int `json:"proxies"`
	// CallsAll is set for a service whose dependsOn is "*": it may call
	// the whole mesh, and the graph draws no edge for each.
	CallsAll bool `json:"callsAll,omitempty"`
	// Hosts are an external service's hosts.
	Hosts []string `json:"hosts,omitempty"`
	// TracesURL opens the service's traces in the tracing UI; set when
	// mesh.tracing is and a tracing URL template is configured.
	TracesURL string `json:"tracesUrl,omitempty"`
	// Nacks are the NACK texts of the node's proxies, newest first, one
	// per proxy and type.
	Nacks []string `json:"nacks,omitempty"`
}

// NodeVersion is one version of a service with its class's health.
type NodeVersion struct {
	Name    string `json:"name"`
	Class   string `json:"class,omitempty"`
	Health  Health `json:"health"`
	Proxies int    `json:"proxies"`
}

// EdgeKind says where an edge comes from.
type EdgeKind string

// Edge kinds.
const (
	// EdgeDependsOn is a service's dependsOn entry.
	EdgeDependsOn EdgeKind = "dependsOn"
	// EdgeRoute is a route of a service or gateway sending traffic to
	// another service or an external one.
	EdgeRoute EdgeKind = "route"
	// EdgeEgress is traffic to an external service leaving through its
	// egress gateway: service → gateway (and gateway → external is a
	// route of the gateway or EdgeEgress when it has none).
	EdgeEgress EdgeKind = "egress"
)

// Edge is traffic the mesh allows from one node to another. Weights are
// the destination's split over its versions, per route, as the caller's
// proxy applies it.
type Edge struct {
	ID      string       `json:"id"`
	From    string       `json:"from"`
	To      string       `json:"to"`
	Kind    EdgeKind     `json:"kind"`
	Weights []EdgeWeight `json:"weights,omitempty"`
	// RequestsPerSecond and ErrorsPerSecond are measured (Prometheus);
	// absent without measured traffic.
	RequestsPerSecond *float64 `json:"requestsPerSecond,omitempty"`
	ErrorsPerSecond   *float64 `json:"errorsPerSecond,omitempty"`
	// Measured splits the measured rates by destination version.
	Measured []VersionRate `json:"measured,omitempty"`
}

// EdgeWeight is one destination of one route: the share of the route's
// traffic sent to a version, in percent of the route's total weight.
type EdgeWeight struct {
	Route   string `json:"route"`
	Version string `json:"version,omitempty"`
	Weight  int    `json:"weight"`
}

// VersionRate is measured traffic to one destination version ("" when
// the metric does not say which).
type VersionRate struct {
	Version           string  `json:"version,omitempty"`
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	ErrorsPerSecond   float64 `json:"errorsPerSecond"`
}
