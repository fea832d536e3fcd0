package envoystrict

// The GM08xx finding codes. Render reports the same codes for what it finds
// while building (it re-exports these constants), so there is one table;
// TestCodesDocumented keeps it and policies/CODES.md in step.
const (
	// CodeUnresolved: the model names something that does not exist
	// (service, external, gateway, port) where render needs it.
	CodeUnresolved = "GM0801"
	// CodeInvalidResource: an emitted resource fails Envoy's generated
	// validation or cannot be unpacked.
	CodeInvalidResource = "GM0802"
	// CodeDangling: an RDS, CDS or EDS name that does not resolve within
	// the class (rule_references.go).
	CodeDangling = "GM0803"
	// CodeSecret: an SDS secret name that will not be served
	// (rule_references.go).
	CodeSecret = "GM0804"
	// CodeFilterOrder: a terminal filter (HTTP router, tcp_proxy, HCM) not
	// last, or a chain that does not end with one (rule_terminal_filter.go).
	CodeFilterOrder = "GM0805"
	// CodeWeights: weighted clusters that do not add up (rule_weights.go).
	CodeWeights = "GM0806"
	// CodeTimeout: a negative duration (rule_timeouts.go).
	CodeTimeout = "GM0807"
	// CodeInvalidValue: a value render cannot express or Envoy refuses at
	// load (a regex RE2 rejects, bad host:port).
	CodeInvalidValue = "GM0808"
	// CodeUnsupported: a combination the target proxy cannot do.
	CodeUnsupported = "GM0809"
	// CodeConflict: two resources with one name in one class
	// (rule_unique_names.go).
	CodeConflict = "GM0810"
	// CodeDuplicateAddress: two listeners of one class on one address:port
	// (rule_bound_address.go).
	CodeDuplicateAddress = "GM0811"
	// CodeFilterChainMatch: filter chains of one listener with identical or
	// overlapping matches, or a match Envoy refuses
	// (rule_filter_chain_match.go).
	CodeFilterChainMatch = "GM0812"
	// CodeCapture: traffic capture without a destination for what it
	// captures (rule_original_dst.go).
	CodeCapture = "GM0813"
	// CodeDomains: a virtual host domain twice in one route config, or two
	// "*" (rule_vhost_domains.go).
	CodeDomains = "GM0814"
	// CodeTLS: a TLS context Envoy refuses: a server context without
	// certificates (rule_tls_certificates.go).
	CodeTLS = "GM0815"
	// CodeCluster: a cluster whose discovery type and settings do not fit
	// together (rule_cluster_type.go).
	CodeCluster = "GM0816"
	// CodeListener: a listener Envoy cannot build: no filter chains at all
	// (rule_listener_chains.go).
	CodeListener = "GM0817"
)

// CodeInfo is one row of the code table.
type CodeInfo struct {
	Code  string
	Title string
}

// Codes returns every GM08xx code with its title, in code order. All are
// errors: a bundle with any of them is never served.
func Codes() []CodeInfo {
	return []CodeInfo{
		{CodeUnresolved, "the model names something missing where render needs it"},
		{CodeInvalidResource, "an emitted resource fails Envoy's generated validation (ValidateAll)"},
		{CodeDangling, "a proxy references a route config, cluster or assignment it does not get"},
		{CodeSecret, "an SDS secret that will not be served"},
		{CodeFilterOrder, "a terminal filter not last, or an HTTP connection manager without the router last"},
		{CodeWeights, "weighted clusters that do not add up (0, more than uint32, or not `total_weight`)"},
		{CodeTimeout, "a negative timeout"},
		{CodeInvalidValue, "a value render cannot express: a regex RE2 rejects or too big for Envoy, a bad host:port"},
		{CodeUnsupported, "unsupported combination (proxyless \u2192 external, a non-http(s) Wasm url); policies report each first as GM0208"},
		{CodeConflict, "two resources with one name in one proxy"},
		{CodeDuplicateAddress, "two listeners of one proxy on one address:port, bound or not (Envoy compares both)"},
		{CodeFilterChainMatch, "filter chains of one listener with identical or overlapping matches, or a match Envoy cannot index"},
		{CodeCapture, "traffic capture without a listener or filter chain for a captured destination, or a non-binding listener nothing hands connections to"},
		{CodeDomains, "a virtual host domain twice in one route config (case-insensitive), or two `*`"},
		{CodeTLS, "a TLS server context without certificates, or SAN matching without a trusted CA"},
		{CodeCluster, "a cluster type with settings Envoy refuses for it (EDS without a config source, ORIGINAL_DST not CLUSTER_PROVIDED, \u2026)"},
		{CodeListener, "a listener without filter chains"},
	}
}
