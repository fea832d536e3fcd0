package xds

import (
	"errors"
	"fmt"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// Limits on what a peer sends. Everything a proxy sends is untrusted: any
// holder of a mesh certificate (or, with --xds-insecure, anyone) can send
// it, and what is kept of it reaches the status API, the drift report and
// the logs. A request over a limit is refused with InvalidArgument before
// any of it is stored or logged; the refusal names the limit and the size,
// never the oversized value.
//
// The limits are far above what real proxies send: node ids follow the
// grammar of internal/nodeid (five short names), Envoy's and grpc-go's
// node metadata is a few KiB, and gitmesh's resource names are short.
const (
	// MaxNodeIDBytes bounds a node id.
	MaxNodeIDBytes = 512
	// MaxNodeBytes bounds the whole encoded node: metadata, locality,
	// extensions, client features, listening addresses.
	MaxNodeBytes = 64 << 10
	// MaxUserAgentBytes bounds user_agent_name and user_agent_version.
	MaxUserAgentBytes = 256
	// MaxTypeURLBytes bounds a request's type URL; MaxTypesPerStream how
	// many distinct type URLs one stream may ask for (gitmesh serves five).
	MaxTypeURLBytes   = 256
	MaxTypesPerStream = 16
	// MaxResourceNames bounds the resource names (and locators) of one
	// request, and the names one delta subscription holds in total.
	MaxResourceNames = 16384
	// MaxResourceNameBytes bounds one resource name.
	MaxResourceNameBytes = 1024
	// MaxNonceBytes and MaxVersionBytes bound response_nonce and
	// version_info (and delta's initial resource versions): both echo what
	// gitmesh sent, which is short.
	MaxNonceBytes   = 128
	MaxVersionBytes = 256
	// MaxErrorDetailBytes is how much of a NACK's error_detail is kept and
	// shown; the rest is cut. A NACK is never refused for its length: its
	// text is the proxy's diagnosis.
	MaxErrorDetailBytes = 4 << 10

	// MaxRecvMsgSize is grpc's limit on one request message, grpc-go's
	// default set on purpose: the largest request a proxy sends is its
	// first (the node, and for EDS every cluster name: 10,000 names of 100
	// bytes is 1 MB). grpc refuses a larger message with ResourceExhausted
	// before reading it; the stream is then recorded as refused.
	MaxRecvMsgSize = 4 << 20
	// DefaultMaxConcurrentStreams bounds streams per connection
	// (Options.MaxConcurrentStreams; grpc's own default is 2^32). Envoy and
	// grpc-go open one ADS stream per connection; load tools (meshbench,
	// the benchmarks) multiplex hundreds over a few connections.
	DefaultMaxConcurrentStreams = 1024
	// MaxHeaderListSize bounds a stream's request headers (grpc metadata).
	MaxHeaderListSize = 64 << 10
	// HandshakeTimeout bounds a connection's TLS handshake (grpc's
	// ConnectionTimeout, 120 s by default): a peer that connects and says
	// nothing is dropped and recorded as refused.
	HandshakeTimeout = 10 * time.Second
	// DefaultMaxConnectionIdle closes a connection that has had no stream
	// for this long (grpc keepalive MaxConnectionIdle). A proxy keeps its
	// ADS stream open for as long as it runs, so only connections whose
	// stream was refused, or that never opened one, are closed.
	DefaultMaxConnectionIdle = 2 * time.Minute
)

// refusal is an error that ends a stream and is recorded as a rejection.
// Its text is bounded: every value in it went through clip first.
type refusal struct {
	st     *status.Status
	reason string
	nodeID string // clipped
}

func (r *refusal) Error() string              { return r.st.Err().Error() }
func (r *refusal) GRPCStatus() *status.Status { return r.st }

func refuse(reason, nodeID string, code codes.Code, format string, args ...any) *refusal {
	return &refusal{st: status.Newf(code, format, args...), reason: reason, nodeID: clip(nodeID, MaxNodeIDBytes)}
}

// refusalOf makes err (a gRPC status from admit or Authorize) a refusal.
func refusalOf(reason, nodeID string, err error) *refusal {
	var r *refusal
	if errors.As(err, &r) {
		return r
	}
	st := status.Convert(err)
	return &refusal{st: status.New(st.Code(), clip(st.Message(), maxRejectionText)), reason: reason, nodeID: clip(nodeID, MaxNodeIDBytes)}
}

// clip cuts s to at most n bytes (plus an ellipsis), on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}

// who names the node a refusal is about, when the request names one.
func who(nodeID string) string {
	if nodeID == "" {
		return ""
	}
	return fmt.Sprintf("node %q: ", nodeID)
}

// preview is how an oversized value is named in a refusal: its first bytes.
func preview(s string) string { return fmt.Sprintf("%q", clip(s, 64)) }

func tooLong(what, value string, limit int) string {
	return fmt.Sprintf("%s %s is %d bytes, more than the limit of %d", what, preview(value), len(value), limit)
}

// checkNode refuses a node over the limits. It runs on every request that
// carries a node, before its id is used, logged or kept.
func checkNode(n *core.Node) *refusal {
	if n == nil {
		return nil
	}
	id := n.GetId()
	if len(id) > MaxNodeIDBytes {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%s", tooLong("node id", id, MaxNodeIDBytes))
	}
	if ua := n.GetUserAgentName(); len(ua) > MaxUserAgentBytes {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%s%s", who(id), tooLong("user agent name", ua, MaxUserAgentBytes))
	}
	if ua := n.GetUserAgentVersion(); len(ua) > MaxUserAgentBytes {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%s%s", who(id), tooLong("user agent version", ua, MaxUserAgentBytes))
	}
	if size := proto.Size(n); size > MaxNodeBytes {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%sthe node (metadata included) is %d bytes encoded, more than the limit of %d", who(id), size, MaxNodeBytes)
	}
	return nil
}

// checkCommon checks what SotW and delta requests share.
func checkCommon(nodeID, typeURL, nonce string) *refusal {
	if len(typeURL) > MaxTypeURLBytes {
		return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s", who(nodeID), tooLong("type URL", typeURL, MaxTypeURLBytes))
	}
	if len(nonce) > MaxNonceBytes {
		return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s", who(nodeID), tooLong("response nonce", nonce, MaxNonceBytes))
	}
	return nil
}

// checkNames checks one list of resource names of a request.
func checkNames(nodeID, field string, names []string, locators int) *refusal {
	if n := len(names) + locators; n > MaxResourceNames {
		return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s has %d names, more than the limit of %d", who(nodeID), field, n, MaxResourceNames)
	}
	for _, name := range names {
		if len(name) > MaxResourceNameBytes {
			return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s: %s", who(nodeID), field, tooLong("resource name", name, MaxResourceNameBytes))
		}
	}
	return nil
}

// checkLocators checks resource locators' names the way checkNames does.
func checkLocators(nodeID, field string, locs []*discovery.ResourceLocator) *refusal {
	for _, l := range locs {
		if name := l.GetName(); len(name) > MaxResourceNameBytes {
			return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s: %s", who(nodeID), field, tooLong("resource name", name, MaxResourceNameBytes))
		}
		if proto.Size(l) > MaxResourceNameBytes+MaxNodeBytes {
			return refuse(apiv1.ReasonLimit, nodeID, codes.InvalidArgument, "%s%s: a resource locator is %d bytes, more than the limit of %d", who(nodeID), field, proto.Size(l), MaxResourceNameBytes+MaxNodeBytes)
		}
	}
	return nil
}

// checkSotw refuses a SotW request over the limits.
func checkSotw(req *discovery.DiscoveryRequest) *refusal {
	if r := checkNode(req.GetNode()); r != nil {
		return r
	}
	id := req.GetNode().GetId()
	if r := checkCommon(id, req.GetTypeUrl(), req.GetResponseNonce()); r != nil {
		return r
	}
	if v := req.GetVersionInfo(); len(v) > MaxVersionBytes {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%s%s", who(id), tooLong("version_info", v, MaxVersionBytes))
	}
	if r := checkNames(id, "resource_names", req.GetResourceNames(), len(req.GetResourceLocators())); r != nil {
		return r
	}
	return checkLocators(id, "resource_locators", req.GetResourceLocators())
}

// checkDelta refuses a delta request over the limits.
func checkDelta(req *discovery.DeltaDiscoveryRequest) *refusal {
	if r := checkNode(req.GetNode()); r != nil {
		return r
	}
	id := req.GetNode().GetId()
	if r := checkCommon(id, req.GetTypeUrl(), req.GetResponseNonce()); r != nil {
		return r
	}
	if r := checkNames(id, "resource_names_subscribe", req.GetResourceNamesSubscribe(), len(req.GetResourceLocatorsSubscribe())); r != nil {
		return r
	}
	if r := checkNames(id, "resource_names_unsubscribe", req.GetResourceNamesUnsubscribe(), len(req.GetResourceLocatorsUnsubscribe())); r != nil {
		return r
	}
	if r := checkLocators(id, "resource_locators_subscribe", req.GetResourceLocatorsSubscribe()); r != nil {
		return r
	}
	if r := checkLocators(id, "resource_locators_unsubscribe", req.GetResourceLocatorsUnsubscribe()); r != nil {
		return r
	}
	initial := req.GetInitialResourceVersions()
	if len(initial) > MaxResourceNames {
		return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%sinitial_resource_versions has %d names, more than the limit of %d", who(id), len(initial), MaxResourceNames)
	}
	for name, v := range initial {
		if len(name) > MaxResourceNameBytes {
			return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%sinitial_resource_versions: %s", who(id), tooLong("resource name", name, MaxResourceNameBytes))
		}
		if len(v) > MaxVersionBytes {
			return refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%sinitial_resource_versions: %s", who(id), tooLong("version", v, MaxVersionBytes))
		}
	}
	return nil
}
