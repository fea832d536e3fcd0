package policies

import "github.com/gitmesh/gitmesh/schema/model"

// CodeInfo describes one finding code, so the CLI (`gitmesh validate
// --list-codes`) and the docs print the same table the checks report from.
type CodeInfo struct {
	// Code is the stable identifier, GMnnnn.
	Code string `json:"code"`
	// Severity is the severity every finding with this code carries.
	Severity model.Severity `json:"severity"`
	// Title says in a few words what the code is about.
	Title string `json:"title"`
}

// The codes this package reports. Severities live here and only here: the
// checks look them up, so the table cannot drift from what is reported.
const (
	CodeUnknownService       = "GM0101"
	CodeUnknownVersion       = "GM0102"
	CodeUnknownGateway       = "GM0103"
	CodeUnknownExternal      = "GM0104"
	CodeUnknownExtensionSvc  = "GM0105"
	CodeUnknownDependency    = "GM0106"
	CodeAmbiguousDest        = "GM0107"
	CodeUndeclaredDependency = "GM0108"
	CodeViaIngress           = "GM0109"
	CodeUnknownEndpointPort  = "GM0110"

	CodeWeights          = "GM0201"
	CodePort             = "GM0202"
	CodeUnreachableRoute = "GM0203"
	CodeRetryTimeout     = "GM0204"
	CodeGatewayHost      = "GM0205"
	CodeEgressBypass     = "GM0206"
	CodeProxylessIgnores = "GM0207"
	CodeUnsupported      = "GM0208"
	CodeTCPRoute         = "GM0209"
	CodeUnroutedListener = "GM0210"
	CodeServiceHosts     = "GM0211"

	CodeHostClaimed         = "GM0301"
	CodeListenerProtocol    = "GM0302"
	CodeDuplicatePort       = "GM0303"
	CodeVIPClaimed          = "GM0304"
	CodeVIPReserved         = "GM0305"
	CodeVIPRangeFull        = "GM0306"
	CodeProxyPort           = "GM0307"
	CodeSidecarEndpointPort = "GM0308"
	CodeMTLSBlocksCaller    = "GM0401"
	CodeUnknownSource       = "GM0402"
	CodeCallerDenied        = "GM0403"
	CodeAuthzPort           = "GM0404"
	CodeAuthzUnenforced     = "GM0405"
	CodeUnreachedService    = "GM0501"
	CodeUnusedGateway       = "GM0502"
	CodeNoEndpoints         = "GM0503"
	CodeEmptyMesh           = "GM0504"
	// CodeNeedsServe is reported by internal/pipeline, not by Check: a
	// revision needs something only serve has (a gateway credential file).
	CodeNeedsServe       = "GM0601"
	CodeUnknownGuardrail = "GM1000"
	CodeStrictMTLS       = "GM1001"
	CodeTimeouts         = "GM1002"
	CodeRetriesBudget    = "GM1003"
	CodeWildcardIngress  = "GM1004"
	CodeEgressGateway    = "GM1005"
	CodeAuthzRequired    = "GM1006"

	CodeTestRequest = "GM1101"
	CodeTestFrom    = "GM1102"
	CodeTestTo      = "GM1103"
	// CodeTestFails is reported by internal/pipeline after render: the
	// test is evaluated on the rendered bundle (render/traffic).
	CodeTestFails = "GM1104"
)

const (
	errS  = model.SeverityError
	warnS = model.SeverityWarning
	infoS = model.SeverityInfo
)

// codes is the whole table in code order, loader codes included so one list
// documents everything `gitmesh validate` can print.
var codes = []CodeInfo{
	{"GM0001", errS, "syntax or parse error (CUE, YAML, JSON)"},
	{"GM0002", errS, "schema violation"},
	{"GM0003", errS, "missing required field or incomplete value"},
	{"GM0004", errS, "file over the size limit"},
	{"GM0005", errS, "repository over the total size limit"},
	{"GM0006", errS, "symlink leaving the repository or unsafe path"},
	{"GM0007", errS, "evaluation timed out"},
	{"GM0008", errS, "invalid user guardrail definition"},
	{"GM0009", errS, "guardrail violation"},
	{"GM0010", errS, "evaluation memory limit exceeded"},

	{CodeUnknownService, errS, "route destination or mirror names an unknown service"},
	{CodeUnknownVersion, errS, "route destination or mirror names an unknown version"},
	{CodeUnknownGateway, errS, "external via or extension names an unknown gateway"},
	{CodeUnknownExternal, errS, "route destination names an unknown external service"},
	{CodeUnknownExtensionSvc, errS, "extension applies to an unknown service"},
	{CodeUnknownDependency, errS, "dependsOn names neither a service nor an external service"},
	{CodeAmbiguousDest, errS, "destination names both a service and an external service, or a gateway destination names neither"},
	{CodeUndeclaredDependency, warnS, "route sends traffic to a service missing from the owner's dependsOn"},
	{CodeViaIngress, errS, "external via names an ingress gateway"},
	{CodeUnknownEndpointPort, errS, "endpoint port override names a port the owner does not have"},

	{CodeWeights, errS, "route weights do not sum to 100"},
	{CodePort, errS, "route, destination or mirror names a port that does not exist or cannot carry its routes"},
	{CodeUnreachableRoute, warnS, "route is shadowed by an earlier route and never matches"},
	{CodeRetryTimeout, warnS, "retry per-try timeout is not shorter than the route timeout"},
	{CodeGatewayHost, errS, "gateway route host or external host is not served by the gateway's listeners"},
	{CodeEgressBypass, warnS, "egress gateway routes to an external service that does not leave through it"},
	{CodeProxylessIgnores, warnS, "proxyless gRPC ignores a route or extension feature"},
	{CodeUnsupported, errS, "combination no proxy can render (proxyless route to an external service, non-http(s) Wasm url)"},
	{CodeTCPRoute, errS, "route on a PASSTHROUGH or tcp listener uses what only HTTP routes can do"},
	{CodeUnroutedListener, errS, "PASSTHROUGH or tcp listener host without a route"},
	{CodeServiceHosts, errS, "service route sets hosts, which only gateway routes use"},

	{CodeHostClaimed, errS, "host claimed twice"},
	{CodeListenerProtocol, errS, "gateway listeners on one port with different protocols"},
	{CodeDuplicatePort, errS, "port, listener or route declared twice"},
	{CodeVIPClaimed, errS, "VIP claimed by two services"},
	{CodeVIPReserved, errS, "declared VIP is mesh.vipRange's network or broadcast address"},
	{CodeVIPRangeFull, warnS, "mesh.vipRange has no free address for some services"},
	{CodeProxyPort, errS, "service target port is a port the sidecar proxy owns"},
	{CodeSidecarEndpointPort, warnS, "a sidecar service's endpoint listens on a port other than the target port"},

	{CodeMTLSBlocksCaller, errS, "mTLS mode blocks a declared caller or makes authorization unusable"},
	{CodeUnknownSource, errS, "authorization rule names an unknown service or namespace"},
	{CodeCallerDenied, warnS, "declared caller is denied or not allowed by authorization"},
	{CodeAuthzPort, warnS, "authorization rule names a port the service does not have"},
	{CodeAuthzUnenforced, warnS, "authorization on a service without a proxy is not enforced"},

	{CodeUnreachedService, infoS, "service is not reached by any route, gateway or dependsOn"},
	{CodeUnusedGateway, infoS, "gateway has no routes"},
	{CodeNoEndpoints, warnS, "traffic target has no endpoints"},
	{CodeEmptyMesh, errS, "mesh has no services and does not set mesh.allowEmpty"},

	{CodeNeedsServe, warnS, "gateway credential that serve must find in its credentials dir"},
	// Reported by gitmesh check about the suppressions file; listed here so
	// one table holds every code.
	{"GM0901", errS, "suppression without a reason"},
	{"GM0902", errS, "invalid suppressions file"},
	{"GM0903", infoS, "suppression that matches nothing"},

	{CodeUnknownGuardrail, errS, "unknown guardrail pack"},
	{CodeStrictMTLS, errS, "guardrail require-strict-mtls: service mTLS is not STRICT"},
	{CodeTimeouts, errS, "guardrail require-timeouts: HTTP route without a timeout"},
	{CodeRetriesBudget, errS, "guardrail require-retries-budget: unbounded retries"},
	{CodeWildcardIngress, errS, "guardrail no-wildcard-ingress-hosts: wildcard ingress host"},
	{CodeEgressGateway, errS, "guardrail egress-through-gateway: traffic leaves the mesh directly"},
	{CodeAuthzRequired, errS, "guardrail require-authorization: service without allow rules"},

	{CodeTestRequest, errS, "traffic test request that does not parse"},
	{CodeTestFrom, errS, "traffic test from a proxy class that does not exist"},
	{CodeTestTo, errS, "traffic test expecting a destination that does not exist"},
	{CodeTestFails, errS, "traffic test that fails on the rendered config"},
}

var severityOf = func() map[string]model.Severity {
	m := make(map[string]model.Severity, len(codes))
	for _, c := range codes {
		m[c.Code] = c.Severity
	}
	return m
}()

// Codes returns every finding code gitmesh reports, loader codes (GM00xx)
// included, in code order. The slice is a copy the caller may keep.
func Codes() []CodeInfo {
	return append([]CodeInfo(nil), codes...)
}

// LookupCode returns the description of a code, so tools can explain a
// code found in CI output or reject an unknown code in a suppression list.
func LookupCode(code string) (CodeInfo, bool) {
	for _, c := range codes {
		if c.Code == code {
			return c, true
		}
	}
	return CodeInfo{}, false
}
