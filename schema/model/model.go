// Package model is the typed mesh model: the contract between the stages of
// gitmesh. The schema package decodes a mesh repository into it; policies
// check it; render turns it into Envoy resources. It imports no CUE and does
// no I/O, so every stage after loading can be tested with plain Go values.
//
// Maps are keyed by name and the Name field repeats the key. Code that must be
// deterministic (render, policies, output) iterates the sorted names returned
// by the *Names methods, never the maps themselves.
package model

import (
	"maps"
	"slices"
)

// Mesh is one loaded mesh repository at one revision.
type Mesh struct {
	Mesh       MeshConfig            `json:"mesh"`
	Services   map[string]*Service   `json:"services,omitempty"`
	Gateways   map[string]*Gateway   `json:"gateways,omitempty"`
	External   map[string]*External  `json:"external,omitempty"`
	Extensions map[string]*Extension `json:"extensions,omitempty"`
	// Tests are the repository's traffic tests (traffictest.go).
	Tests map[string]*TrafficTest `json:"tests,omitempty"`

	// Sources maps field paths to the positions they were written at, so
	// policies and render can report positions without seeing CUE.
	Sources *Sources `json:"-"`
}

// MTLSMode is the mutual TLS mode of the mesh or of one service, with
// Istio's PeerAuthentication meanings.
type MTLSMode string

// The mTLS modes. An empty mode on a service means "inherit the mesh's".
const (
	MTLSStrict     MTLSMode = "STRICT"
	MTLSPermissive MTLSMode = "PERMISSIVE"
	MTLSDisable    MTLSMode = "DISABLE"
)

// MeshConfig holds mesh-wide settings (the `mesh` block).
type MeshConfig struct {
	// Name names the mesh; it appears in status and drift reports.
	Name string `json:"name"`
	// TrustDomain is the SPIFFE trust domain of workload identities.
	TrustDomain string `json:"trustDomain"`
	// ClusterDomain is the DNS suffix of service hosts (NAME.NS.svc.DOMAIN).
	ClusterDomain string `json:"clusterDomain"`
	// MTLS is the default mutual TLS mode.
	MTLS MTLSMode `json:"mtls"`
	// OutboundTrafficPolicy is REGISTRY_ONLY or ALLOW_ANY: where a
	// sidecar's outbound virtual listener sends traffic to a destination no
	// listener matches (BlackHoleCluster or PassthroughCluster).
	OutboundTrafficPolicy string `json:"outboundTrafficPolicy"`
	// VIPRange is the CIDR from which services without addresses get a
	// deterministic VIP (see Mesh.VIPs); "" allocates none.
	VIPRange string `json:"vipRange"`
	// Tracing configures tracing in every HTTP connection manager; nil is off.
	Tracing *Tracing `json:"tracing,omitempty"`
	// Guardrails names the built-in guardrail packs that are enabled.
	Guardrails []string `json:"guardrails,omitempty"`
	// AllowEmpty says a mesh without services is intended; without it the
	// policies refuse one (GM0504), so deleting every mesh file is an error
	// and not an outage.
	AllowEmpty bool `json:"allowEmpty,omitempty"`
	// AllowClassLoss lets serve apply a revision that removes more than its
	// --max-class-loss share of the live proxy classes.
	AllowClassLoss bool `json:"allowClassLoss,omitempty"`
}

// Tracing is the mesh's tracing provider.
type Tracing struct {
	// Provider is "zipkin" or "opentelemetry".
	Provider string `json:"provider"`
	// Endpoint is host:port of the collector.
	Endpoint string `json:"endpoint"`
	// Sampling is the percentage of requests traced, 0 to 100.
	Sampling float64 `json:"sampling"`
}

// Protocol names a port protocol.
type Protocol string

// The port protocols.
const (
	ProtocolHTTP  Protocol = "http"
	ProtocolHTTP2 Protocol = "http2"
	ProtocolGRPC  Protocol = "grpc"
	ProtocolHTTPS Protocol = "https"
	ProtocolTCP   Protocol = "tcp"
	ProtocolTLS   Protocol = "tls"
)

// IsHTTP reports whether traffic on the protocol is routed by HTTP rules.
func (p Protocol) IsHTTP() bool {
	return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC
}

// ProxyKind says how a service's workloads take part in the mesh.
type ProxyKind string

// The proxy kinds.
const (
	// ProxySidecar is an Envoy sidecar next to each workload.
	ProxySidecar ProxyKind = "sidecar"
	// ProxyProxyless is a gRPC application using grpc-go's xDS support.
	ProxyProxyless ProxyKind = "proxyless"
	// ProxyNone is a workload outside the mesh's data plane (reachable, but
	// it receives no config).
	ProxyNone ProxyKind = "none"
)

// Service is one service of the mesh (Istio: a Kubernetes Service plus its
// VirtualService, DestinationRule and AuthorizationPolicy).
type Service struct {
	Name           string `json:"-"`
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// Proxy says which kind of proxy the service's workloads run.
	Proxy ProxyKind `json:"proxy"`
	// Ports the service exposes, in declaration order.
	Ports []Port `json:"ports"`
	// Addresses are the service's declared VIPs (IPv4 or IPv6); empty means
	// discovered (Kubernetes ClusterIPs) or allocated from mesh.vipRange.
	Addresses []string `json:"addresses,omitempty"`
	// Versions are the subsets (v1, v2 …) with their labels and endpoints.
	Versions map[string]*Version `json:"versions"`
	// Discovery is "static" (endpoints from Git) or "kubernetes".
	Discovery string `json:"discovery"`
	// DependsOn lists the services and external services this one calls.
	// ["*"] (the default) means the whole mesh.
	DependsOn []string `json:"dependsOn"`
	// MTLS overrides the mesh's mode for traffic into this service; "" inherits.
	MTLS MTLSMode `json:"mtls,omitempty"`
	// Routes are the HTTP routing rules, first match wins. With none, traffic
	// is spread over all versions.
	Routes []Route `json:"routes,omitempty"`
	// TrafficPolicy applies to every version unless a version overrides it.
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
	// Authorization restricts who may call the service; nil allows everyone
	// the mTLS mode lets in.
	Authorization *Authorization `json:"authorization,omitempty"`
}

// CallsAll reports whether the service may call every service in the mesh.
func (s *Service) CallsAll() bool {
	for _, d := range s.DependsOn {
		if d == "*" {
			return true
		}
	}
	return false
}

// Port returns the port with the given number, or nil.
func (s *Service) Port(number int) *Port {
	for i := range s.Ports {
		if s.Ports[i].Number == number {
			return &s.Ports[i]
		}
	}
	return nil
}

// VersionNames returns the version names sorted.
func (s *Service) VersionNames() []string { return sortedKeys(s.Versions) }

// Port is a port a service, gateway or external service exposes.
type Port struct {
	Name     string   `json:"name"`
	Number   int      `json:"number"`
	Protocol Protocol `json:"protocol"`
	// TargetPort is the port the workload listens on; it defaults to Number.
	TargetPort int `json:"targetPort"`
}

// Target is the port the workload listens on: TargetPort, or Number when
// unset. The one owner of that default (render, policies, traffic tests and
// Kubernetes discovery all read it here).
func (p Port) Target() int {
	if p.TargetPort > 0 {
		return p.TargetPort
	}
	return p.Number
}

// Version is a subset of a service's workloads.
type Version struct {
	Name   string            `json:"-"`
	Labels map[string]string `json:"labels,omitempty"`
	// Endpoints are static addresses of the version's workloads.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// TrafficPolicy overrides the service's for this version.
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
}

// Endpoint is one workload address.
type Endpoint struct {
	Address string `json:"address"`
	// Ports overrides target ports by port name (for workloads that listen
	// elsewhere, like several services on one loopback host).
	Ports map[string]int `json:"ports,omitempty"`
	// Weight is the load-balancing weight; 0 means 1.
	Weight int `json:"weight,omitempty"`
}

// Duration is a length of time in nanoseconds. The model uses its own type
// so that render need not import package time.
type Duration int64

// Common durations.
const (
	Millisecond Duration = 1e6
	Second      Duration = 1e9
)

// Seconds splits d for google.protobuf.Duration.
func (d Duration) Seconds() (secs int64, nanos int32) {
	return int64(d) / int64(Second), int32(int64(d) % int64(Second))
}

// Route is an HTTP routing rule of a service or a gateway.
type Route struct {
	// Name names the rule; it defaults to "route-N" (N from 0).
	Name string `json:"name"`
	// Port limits the rule to one service port (or gateway listener port);
	// 0 means every HTTP port.
	Port int `json:"port,omitempty"`
	// Hosts limits a gateway route to some of the listener's hosts.
	// Service routes leave it empty.
	Hosts []string `json:"hosts,omitempty"`
	// Match lists alternatives; a request matching any of them takes the
	// route. No match matches everything.
	Match []Match `json:"match,omitempty"`
	// To lists weighted destinations.
	To []Destination `json:"to"`
	// Timeout bounds the whole request; 0 means none.
	Timeout Duration `json:"timeout,omitempty"`
	Retries *Retries `json:"retries,omitempty"`
	Fault   *Fault   `json:"fault,omitempty"`
	Mirror  *Mirror  `json:"mirror,omitempty"`
	Headers *Headers `json:"headers,omitempty"`
	Rewrite *Rewrite `json:"rewrite,omitempty"`
}

// Match is one set of request conditions, all of which must hold.
type Match struct {
	Path    *StringMatch           `json:"path,omitempty"`
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Method is an HTTP method such as GET; "" matches any.
	Method string `json:"method,omitempty"`
}

// IsCatchAll reports whether the match matches every request.
func (m Match) IsCatchAll() bool {
	return (m.Path == nil || (m.Path.Prefix == "/" && m.Path.Exact == "" && m.Path.Regex == "")) &&
		len(m.Headers) == 0 && m.Method == ""
}

// StringMatch matches a string exactly, by prefix or by RE2 regex. Exactly one
// is set, or Present alone for "the header is present".
type StringMatch struct {
	Exact   string `json:"exact,omitempty"`
	Prefix  string `json:"prefix,omitempty"`
	Regex   string `json:"regex,omitempty"`
	Present bool   `json:"present,omitempty"`
}

// Destination is a weighted target of a route.
type Destination struct {
	// Service is the target service; "" means the route's own service.
	// Gateway routes name a service or an external service.
	Service string `json:"service,omitempty"`
	// External names an external service instead of a mesh service.
	External string `json:"external,omitempty"`
	// Version is a version of the service; "" means all its versions.
	Version string `json:"version,omitempty"`
	// Port is the target port; 0 means the port the request came in on (or
	// the service's only port).
	Port int `json:"port,omitempty"`
	// Weight is the share of traffic, 0 to 100.
	Weight int `json:"weight"`
}

// Retries is a retry policy.
type Retries struct {
	Attempts      int      `json:"attempts"`
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
	// RetryOn is Envoy's retry_on list, comma separated.
	RetryOn string `json:"retryOn"`
}

// Fault injects delays or aborts into a share of requests.
type Fault struct {
	Delay *FaultDelay `json:"delay,omitempty"`
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay delays Percent of requests by Fixed.
type FaultDelay struct {
	Fixed   Duration `json:"fixed"`
	Percent float64  `json:"percent"`
}

// FaultAbort answers Percent of requests with an HTTP or a gRPC status.
type FaultAbort struct {
	HTTPStatus int     `json:"httpStatus,omitempty"`
	GRPCStatus int     `json:"grpcStatus,omitempty"`
	Percent    float64 `json:"percent"`
}

// Mirror copies Percent of requests to another destination, fire and forget.
type Mirror struct {
	Service string  `json:"service,omitempty"`
	Version string  `json:"version,omitempty"`
	Port    int     `json:"port,omitempty"`
	Percent float64 `json:"percent"`
}

// Headers edits request and response headers.
type Headers struct {
	Request  *HeaderOps `json:"request,omitempty"`
	Response *HeaderOps `json:"response,omitempty"`
}

// HeaderOps sets (overwrites), adds (appends) and removes headers.
type HeaderOps struct {
	Set    map[string]string `json:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty"`
	Remove []string          `json:"remove,omitempty"`
}

// Rewrite rewrites the request before it is forwarded.
type Rewrite struct {
	// Prefix replaces the matched path prefix.
	Prefix string `json:"prefix,omitempty"`
	// Authority replaces the Host/:authority header.
	Authority string `json:"authority,omitempty"`
}

// TrafficPolicy is Istio's DestinationRule traffic policy.
type TrafficPolicy struct {
	// LoadBalancer is ROUND_ROBIN, LEAST_REQUEST, RANDOM or RING_HASH.
	LoadBalancer string `json:"loadBalancer,omitempty"`
	// HashHeader is the request header RING_HASH hashes on.
	HashHeader       string            `json:"hashHeader,omitempty"`
	ConnectionPool   *ConnectionPool   `json:"connectionPool,omitempty"`
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
}

// ConnectionPool limits connections and requests (Envoy circuit breakers).
type ConnectionPool struct {
	ConnectTimeout           Duration `json:"connectTimeout,omitempty"`
	MaxConnections           int      `json:"maxConnections,omitempty"`
	MaxPendingRequests       int      `json:"maxPendingRequests,omitempty"`
	MaxRequests              int      `json:"maxRequests,omitempty"`
	MaxRetries               int      `json:"maxRetries,omitempty"`
	MaxRequestsPerConnection int      `json:"maxRequestsPerConnection,omitempty"`
	IdleTimeout              Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection ejects failing endpoints.
type OutlierDetection struct {
	Consecutive5xxErrors     int      `json:"consecutive5xxErrors,omitempty"`
	ConsecutiveGatewayErrors int      `json:"consecutiveGatewayErrors,omitempty"`
	Interval                 Duration `json:"interval,omitempty"`
	BaseEjectionTime         Duration `json:"baseEjectionTime,omitempty"`
	MaxEjectionPercent       int      `json:"maxEjectionPercent,omitempty"`
}

// Authorization is a service's AuthorizationPolicy: deny rules are checked
// first; then, if there are allow rules, a request must match one of them.
type Authorization struct {
	Allow []AuthzRule `json:"allow,omitempty"`
	Deny  []AuthzRule `json:"deny,omitempty"`
}

// AuthzRule matches requests by caller and by operation. Empty lists match
// anything; non-empty lists match if any element matches.
type AuthzRule struct {
	From    []Source `json:"from,omitempty"`
	Methods []string `json:"methods,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	Ports   []int    `json:"ports,omitempty"`
}

// Source is a caller: a service of the mesh, a whole namespace, or a SPIFFE
// principal ("TRUST_DOMAIN/ns/NS/sa/SA", as Istio writes it). Exactly one is set.
type Source struct {
	Service   string `json:"service,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Principal string `json:"principal,omitempty"`
}

// GatewayKind is ingress or egress.
type GatewayKind string

// The gateway kinds.
const (
	GatewayIngress GatewayKind = "ingress"
	GatewayEgress  GatewayKind = "egress"
)

// Gateway is a standalone Envoy at the mesh edge.
type Gateway struct {
	Name           string            `json:"-"`
	Kind           GatewayKind       `json:"kind"`
	Namespace      string            `json:"namespace"`
	ServiceAccount string            `json:"serviceAccount"`
	Listeners      []GatewayListener `json:"listeners"`
	// Routes send listener traffic to services or external services.
	Routes []Route `json:"routes,omitempty"`
	// Endpoints are where the gateway runs; sidecars need them to send
	// egress traffic through it.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// GatewayListener is one port a gateway listens on.
type GatewayListener struct {
	// Name defaults to PROTOCOL-PORT.
	Name     string      `json:"name"`
	Port     int         `json:"port"`
	Protocol Protocol    `json:"protocol"`
	Hosts    []string    `json:"hosts"`
	TLS      *GatewayTLS `json:"tls,omitempty"`
}

// TLS modes of gateway listeners.
const (
	TLSSimple      = "SIMPLE"
	TLSMutual      = "MUTUAL"
	TLSPassthrough = "PASSTHROUGH"
)

// GatewayTLS is how a gateway listener terminates TLS.
type GatewayTLS struct {
	// Mode is SIMPLE, MUTUAL or PASSTHROUGH.
	Mode string `json:"mode"`
	// CredentialName names the certificate (and, for MUTUAL, the client CA)
	// served by SDS: a reference, never key material.
	CredentialName string `json:"credentialName,omitempty"`
	// MinVersion is the lowest TLS version accepted, "1.2" or "1.3".
	MinVersion string `json:"minVersion,omitempty"`
}

// External is a service outside the mesh (Istio's ServiceEntry).
type External struct {
	Name  string   `json:"-"`
	Hosts []string `json:"hosts"`
	Ports []Port   `json:"ports"`
	// Resolution is DNS (resolve Hosts) or STATIC (use Endpoints).
	Resolution string     `json:"resolution"`
	Endpoints  []Endpoint `json:"endpoints,omitempty"`
	// Via names the egress gateway traffic must leave through; "" is direct.
	Via string `json:"via,omitempty"`
	// TLS originates TLS to the host for plain-text ports; nil means the
	// application does its own TLS (passthrough) or none.
	TLS *ExternalTLS `json:"tls,omitempty"`
}

// ExternalTLS originates TLS towards an external host.
type ExternalTLS struct {
	// SNI defaults to the first host.
	SNI string `json:"sni,omitempty"`
}

// Extension phases, in the order the filters run.
const (
	PhaseAuthn = "AUTHN"
	PhaseAuthz = "AUTHZ"
	PhaseStats = "STATS"
)

// Extension is a Wasm HTTP filter (Istio's WasmPlugin).
type Extension struct {
	Name string `json:"-"`
	Wasm Wasm   `json:"wasm"`
	// Config is the plugin configuration as canonical JSON (sorted keys).
	Config string `json:"config,omitempty"`
	// Phase is AUTHN, AUTHZ or STATS: where in the filter chain it runs.
	Phase string `json:"phase"`
	// Priority orders extensions within a phase, higher first.
	Priority int `json:"priority,omitempty"`
	// Services and Gateways the filter applies to.
	Services []string `json:"services,omitempty"`
	Gateways []string `json:"gateways,omitempty"`
	// FailOpen lets traffic through when the module cannot be loaded.
	FailOpen bool `json:"failOpen,omitempty"`
}

// Wasm locates a Wasm module.
type Wasm struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// SetNames fills every Name field from its map key, the one rule that
// keeps the two equal. Name is not part of the JSON form (the key is), so
// a mesh decoded from JSON gets its names here.
func (m *Mesh) SetNames() {
	for n, s := range m.Services {
		s.Name = n
		for vn, v := range s.Versions {
			v.Name = vn
		}
	}
	for n, g := range m.Gateways {
		g.Name = n
	}
	for n, x := range m.External {
		x.Name = n
	}
	for n, x := range m.Extensions {
		x.Name = n
	}
	for n, x := range m.Tests {
		x.Name = n
	}
}

// ServiceNames returns the service names sorted.
func (m *Mesh) ServiceNames() []string { return sortedKeys(m.Services) }

// GatewayNames returns the gateway names sorted.
func (m *Mesh) GatewayNames() []string { return sortedKeys(m.Gateways) }

// ExternalNames returns the external service names sorted.
func (m *Mesh) ExternalNames() []string { return sortedKeys(m.External) }

// ExtensionNames returns the extension names sorted.
func (m *Mesh) ExtensionNames() []string { return sortedKeys(m.Extensions) }

// Host is the fully qualified host of a service: NAME.NS.svc.DOMAIN.
func (m *Mesh) Host(s *Service) string {
	return s.Name + "." + s.Namespace + ".svc." + m.Mesh.ClusterDomain
}

// EffectiveMTLS is the mode traffic into s must use: the service's own,
// else the mesh's, else STRICT. It is the one place the default lives, so
// policies (which judge what callers can reach) and render (which builds the
// inbound TLS) cannot disagree. STRICT matches the CUE schema's default for
// mesh.mtls; a model built in Go without it gets the same answer.
func (m *Mesh) EffectiveMTLS(s *Service) MTLSMode {
	if s != nil && s.MTLS != "" {
		return s.MTLS
	}
	if m.Mesh.MTLS != "" {
		return m.Mesh.MTLS
	}
	return MTLSStrict
}

// SPIFFEID is the identity of a workload: spiffe://TD/ns/NS/sa/SA.
func (m *Mesh) SPIFFEID(namespace, serviceAccount string) string {
	return "spiffe://" + m.Mesh.TrustDomain + "/ns/" + namespace + "/sa/" + serviceAccount
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
