package istioimport

import (
	"regexp"
	"strings"
)

// reasons says why a field has no gitmesh equivalent, by its name. A
// field not listed gets the generic reason: the report still names it.
var reasons = map[string]string{
	"exportTo":              "gitmesh has no visibility scoping: every proxy whose dependsOn reaches the service sees it",
	"workloadSelector":      "gitmesh rules apply to whole services, not to workloads selected by labels",
	"corsPolicy":            "gitmesh has no CORS policy",
	"delegate":              "gitmesh has no route delegation: put the delegate's routes on the service",
	"redirect":              "gitmesh routes have no redirect: the route is not converted",
	"directResponse":        "gitmesh routes have no direct response: the route is not converted",
	"mirror":                "gitmesh mirrors to mesh services only",
	"sourceLabels":          "gitmesh routes cannot depend on the caller: the match is broader than in Istio",
	"sourceNamespace":       "gitmesh routes cannot depend on the caller: the match is broader than in Istio",
	"queryParams":           "gitmesh matches no query parameters: the match is broader than in Istio",
	"authority":             "gitmesh matches no authority (the service's hosts are matched already): the match is broader than in Istio",
	"scheme":                "gitmesh matches no scheme: the match is broader than in Istio",
	"withoutHeaders":        "gitmesh has no negative header match: the match is broader than in Istio",
	"ignoreUriCase":         "gitmesh matches paths case-sensitively",
	"retryRemoteLocalities": "gitmesh has no locality-aware retries",
	"uriRegexRewrite":       "gitmesh rewrites path prefixes only",
	"portLevelSettings":     "gitmesh traffic policies apply to every port of the service",
	"localityLbSetting":     "gitmesh has no locality load balancing",
	"warmupDurationSecs":    "gitmesh has no slow start",
	"tcpKeepalive":          "gitmesh sets no TCP keepalive",
	"h2UpgradePolicy":       "gitmesh chooses HTTP/2 by the port's protocol",
	"useClientProtocol":     "gitmesh chooses HTTP/2 by the port's protocol",
	"maxConcurrentStreams":  "gitmesh sets no HTTP/2 stream limit",
	"minHealthPercent":      "gitmesh has no panic threshold",
	"proxyProtocol":         "gitmesh sends no PROXY protocol header",
	"tunnel":                "gitmesh has no HTTP CONNECT tunnelling",
	"subjectAltNames":       "gitmesh verifies external services by SNI only",
	"addresses":             "gitmesh external services are called by host name: their IP addresses are not listened for",
	"labels":                "gitmesh endpoint labels are not used",
	"locality":              "gitmesh has no locality",
	"network":               "gitmesh has no multi-network endpoints",
	"serviceAccount":        "gitmesh does not verify external endpoints' identities",
	"selector":              "the gitmesh policy applies to whole services",
	"portLevelMtls":         "gitmesh sets mTLS per service, not per port",
	"bind":                  "gitmesh gateways listen on every address",
	"defaultEndpoint":       "gitmesh gateways forward to the route's destination",
	"name":                  "names of matches and servers are not kept",
	"statPrefix":            "gitmesh names stats by route",
	"consistentHash":        "gitmesh hashes on a header only",
	"outboundTrafficPolicy": "gitmesh sets it mesh-wide (mesh.outboundTrafficPolicy), not per proxy",
	"ingress":               "gitmesh's inbound side follows the service's ports",
	"captureMode":           "gitmesh captures traffic one way (gitmesh capture, iptables)",
	"targetRef":             "gitmesh policies are bound by selector or namespace, not targetRef",
	"targetRefs":            "gitmesh policies are bound by selector or namespace, not targetRef",
}

var indexRE = regexp.MustCompile(`\[[0-9]+\]$`)

// reason is why the field at path is dropped.
func reason(path string) string {
	key := path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		key = path[i+1:]
	}
	key = indexRE.ReplaceAllString(key, "")
	if r, ok := reasons[key]; ok {
		return r
	}
	return "no gitmesh equivalent"
}
