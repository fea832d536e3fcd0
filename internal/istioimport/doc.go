// Package istioimport converts Istio configuration into a gitmesh
// repository (`gitmesh import istio`), and says exactly what it could not
// carry over.
//
// Input: YAML documents (multi-document files, `List` kinds) of
// networking.istio.io v1, v1beta1 and v1alpha3 (VirtualService,
// DestinationRule, Gateway, ServiceEntry, Sidecar), security.istio.io
// (PeerAuthentication, AuthorizationPolicy), and Kubernetes v1 Services,
// read only for what Istio leaves to them: ports (protocol by appProtocol
// or name prefix, Istio's protocol selection) and selectors. Any other
// kind is a "skipped" report line, never an error. Deployments,
// StatefulSets and DaemonSets are read for their pods' service account,
// the identity AuthorizationPolicy principals name.
//
// Output: mesh.cue, services/NAME.cue, gateways/NAME.cue,
// external/NAME.cue and tests/generated.cue, built as CUE syntax trees and
// printed by cuelang.org/go/cue/format, so quoting and layout are CUE's
// own. This package builds syntax only; loading and evaluating CUE stays
// the schema package's job (the tests run the result through the real
// pipeline).
//
// The mapping:
//
//   - A VirtualService bound to "mesh" (the default) gives its HTTP routes
//     to the services its hosts name; bound to a Gateway, to that gateway,
//     limited to its hosts. Matches scoped to gateways or ports
//     (match.gateways, match.port) are split by binding, which is how
//     Istio's egress pattern (mesh → egress gateway → ServiceEntry) becomes
//     external.via plus a gateway route. tcp and tls routes become stream
//     routes of ingress gateways.
//   - DestinationRule subsets become versions (labels kept, names as DNS
//     labels), the traffic policy the service's or the version's. For a
//     ServiceEntry host only TLS origination (SIMPLE, sni) carries over.
//   - A Gateway becomes a gitmesh gateway. Istio's Gateway has no
//     direction: selector istio: ingressgateway / egressgateway says it
//     (and gives the identity Istio's install runs it as), else the name.
//   - A ServiceEntry becomes an external service.
//   - A Sidecar's egress hosts become the dependsOn of the services it
//     scopes (workload over namespace over root namespace, as in Istio);
//     generated tests leave only from classes that depend on the target.
//   - PeerAuthentication: the root namespace's sets mesh.mtls, a
//     namespace's each service's mtls there, a selector's the selected
//     services'; narrower wins, as in Istio. Without a mesh-wide one,
//     mesh.mtls is PERMISSIVE (Istio's default, not gitmesh's).
//   - AuthorizationPolicy ALLOW and DENY rules fold into the selected
//     services' authorization. What gitmesh cannot express fails closed:
//     an ALLOW rule loses the rule, a DENY rule the condition.
//   - Services are discovered from Kubernetes (discovery: "kubernetes"):
//     Istio lists no endpoints. A service without subsets gets one version
//     "v1" without labels, which takes every endpoint.
//
// Every field of every converted object that no converter read is a
// "dropped" line of the report (yaml.go tracks reads on yaml.v3 nodes),
// so a field this package does not know about is reported, not lost
// silently. Lines carry the source file:line:col.
//
// Traffic tests (tests.go): each match of each route yields a request
// that takes that route and no earlier one (regexes are sampled with
// regexp/syntax), sent from a proxy class the destination's authorization
// lets in, expecting the route's destinations and weights, its fault
// abort, timeout and retries. A route no test can prove is a "no test"
// line of the report.
package istioimport
