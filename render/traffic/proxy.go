package traffic

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/render"
)

// sidecarOutbound is a request from a workload behind a sidecar: the
// application resolves the host and connects; capture sends the
// connection to virtualOutbound (15001).
func (e *evaluator) sidecarOutbound(h at, ns string) error {
	ip := e.w.Resolve(e.req.Host, ns)
	c := e.clientConn(ip)
	vo := listenerOnPort(h.cfg, proxyports.Outbound)
	if vo == nil || !vo.GetUseOriginalDst().GetValue() {
		e.noRoute(h, "listener", "", "no capture listener with use_original_dst on 15001")
		return nil
	}
	e.hop(h, "capture", vo.GetName(), fmt.Sprintf("outbound connection to %s:%d (%s resolves to %s)", ip, c.dstPort, e.req.Host, ip), "")
	// use_original_dst (listener.proto; ConnectionHandlerImpl's
	// findActiveListenerByAddress in source/server/connection_handler_impl.cc):
	// the connection is handed to the listener whose address is exactly
	// the original destination IP:PORT, else to one on the wildcard
	// address and that port, else it stays on the capturing listener.
	l, why := originalDstListener(h.cfg, ip, c.dstPort), ""
	switch {
	case l != nil && socketIP(l) == ip:
		why = "original destination " + ip + ":" + strconv.Itoa(c.dstPort)
	case l != nil:
		why = "wildcard address, original destination port " + strconv.Itoa(c.dstPort)
	default:
		l, why = vo, "no listener for the original destination"
	}
	return e.listener(h, l, c, why)
}

// proxyless is a request from a grpc-go client: its xds:/// target
// HOST:PORT names an API listener directly (no capture, no filter chains).
func (e *evaluator) proxyless(h at) error {
	name := render.ProxylessListener(e.req.Host, e.req.Port)
	l := h.cfg.Listeners[name]
	if l == nil || l.GetApiListener() == nil {
		e.noRoute(h, "listener", name, "no API listener for the target")
		return nil
	}
	e.hop(h, "listener", name, "API listener of the xds:/// target", "")
	var hcm hcmv3.HttpConnectionManager
	if err := anypb.UnmarshalTo(l.GetApiListener().GetApiListener(), &hcm, proto.UnmarshalOptions{}); err != nil {
		return fmt.Errorf("listener %q: api_listener: %w", name, err)
	}
	// grpc-go matches the virtual host against the target's authority.
	return e.http(h, &hcm, conn{dstPort: e.req.Port}, name)
}

// listenerOnPort is the listener bound on port (bind_to_port unset or
// true), on any address.
func listenerOnPort(c *Config, port int) *listenerv3.Listener {
	for _, n := range c.order {
		l := c.Listeners[n]
		if l.GetApiListener() != nil || (l.GetBindToPort() != nil && !l.GetBindToPort().GetValue()) {
			continue
		}
		if int(l.GetAddress().GetSocketAddress().GetPortValue()) == port {
			return l
		}
	}
	return nil
}

func socketIP(l *listenerv3.Listener) string { return l.GetAddress().GetSocketAddress().GetAddress() }

// originalDstListener is the listener for ip:port, exact first, then
// the wildcard address.
func originalDstListener(c *Config, ip string, port int) *listenerv3.Listener {
	var wild *listenerv3.Listener
	for _, n := range c.order {
		l := c.Listeners[n]
		sa := l.GetAddress().GetSocketAddress()
		if sa == nil || int(sa.GetPortValue()) != port || l.GetUseOriginalDst().GetValue() {
			continue
		}
		switch sa.GetAddress() {
		case ip:
			return l
		case "0.0.0.0", "::":
			if wild == nil {
				wild = l
			}
		}
	}
	return wild
}

// listener takes a connection on l: a filter chain, its TLS, then its
// network filters in order.
func (e *evaluator) listener(h at, l *listenerv3.Listener, c conn, why string) error {
	if h.hops > maxClassHops {
		return fmt.Errorf("more than %d proxies on the way: a loop in the config", maxClassHops)
	}
	// A listener gathers many model paths; its hop points at none.
	e.hop(h, "listener", l.GetName(), why, "")
	fc, how := selectChain(l, c)
	if fc == nil {
		e.noRoute(h, "filter chain", "", fmt.Sprintf("no filter chain of %s matches port %d sni %q transport %s", l.GetName(), c.dstPort, c.sni, c.transport))
		return nil
	}
	detail := chainDetail(fc.GetFilterChainMatch(), len(l.GetFilterChains()))
	if how != "filter chain" {
		detail = "the listener's " + how
	}
	e.hop(h, "filter chain", fc.GetName(), detail, "")
	peer := ""
	if ts := fc.GetTransportSocket(); ts != nil {
		var d tlsv3.DownstreamTlsContext
		if err := anypb.UnmarshalTo(ts.GetTypedConfig(), &d, proto.UnmarshalOptions{}); err == nil {
			if c.transport != "tls" {
				e.noRoute(h, "tls", fc.GetName(), "the chain terminates TLS and the client sent plain text: the handshake fails")
				return nil
			}
			if d.GetRequireClientCertificate().GetValue() {
				if h.peer == "" {
					e.noRoute(h, "tls", fc.GetName(), "the chain requires a client certificate and the client has none")
					return nil
				}
				peer = h.peer
				e.hop(h, "tls", fc.GetName(), "mutual TLS, peer "+peer, "")
			} else {
				e.hop(h, "tls", fc.GetName(), "TLS terminated (server certificate "+sdsNames(d.GetCommonTlsContext())+")", "")
			}
		}
	}
	h.peer = peer
	for _, f := range fc.GetFilters() {
		switch tc := f.GetTypedConfig(); {
		case tc.MessageIs(&rbacnetv3.RBAC{}):
			var r rbacnetv3.RBAC
			if err := anypb.UnmarshalTo(tc, &r, proto.UnmarshalOptions{}); err != nil {
				return err
			}
			if !e.rbac(h, f.GetName(), r.GetRules(), rbacCtx{principal: peer, dstPort: c.dstPort}) {
				return nil
			}
		case tc.MessageIs(&hcmv3.HttpConnectionManager{}):
			var hcm hcmv3.HttpConnectionManager
			if err := anypb.UnmarshalTo(tc, &hcm, proto.UnmarshalOptions{}); err != nil {
				return err
			}
			return e.http(h, &hcm, c, "")
		case tc.MessageIs(&tcpv3.TcpProxy{}):
			var tp tcpv3.TcpProxy
			if err := anypb.UnmarshalTo(tc, &tp, proto.UnmarshalOptions{}); err != nil {
				return err
			}
			return e.tcpProxy(h, &tp, c)
		default:
			e.hop(h, "filter", f.GetName(), "passes (not evaluated)", "")
		}
	}
	e.noRoute(h, "filter chain", fc.GetName(), "no terminal filter")
	return nil
}

func chainDetail(m *listenerv3.FilterChainMatch, n int) string {
	var parts []string
	if p := m.GetDestinationPort(); p != nil {
		parts = append(parts, "destination_port "+strconv.Itoa(int(p.GetValue())))
	}
	for _, r := range m.GetPrefixRanges() {
		parts = append(parts, "prefix "+r.GetAddressPrefix()+"/"+strconv.Itoa(int(r.GetPrefixLen().GetValue())))
	}
	if len(m.GetServerNames()) > 0 {
		parts = append(parts, "server_names "+strings.Join(m.GetServerNames(), ","))
	}
	if t := m.GetTransportProtocol(); t != "" {
		parts = append(parts, "transport "+t)
	}
	if len(parts) == 0 {
		if n == 1 {
			return "the only one, no match criteria"
		}
		return "no match criteria"
	}
	return "matches " + strings.Join(parts, ", ")
}

func sdsNames(c *tlsv3.CommonTlsContext) string {
	var n []string
	for _, s := range c.GetTlsCertificateSdsSecretConfigs() {
		n = append(n, s.GetName())
	}
	return strings.Join(n, ",")
}

// tcpProxy forwards a connection: one cluster, or weighted clusters
// (tcp_proxy.proto: a connection picks one by weight).
func (e *evaluator) tcpProxy(h at, tp *tcpv3.TcpProxy, c conn) error {
	if cl := tp.GetCluster(); cl != "" {
		e.hop(h, "tcp_proxy", tp.GetStatPrefix(), "forwards the connection", "")
		return e.cluster(h, cl, c)
	}
	wc := tp.GetWeightedClusters().GetClusters()
	total := 0
	for _, w := range wc {
		total += int(w.GetWeight())
	}
	e.hop(h, "tcp_proxy", tp.GetStatPrefix(), "weighted clusters", "")
	for _, w := range wc {
		if w.GetWeight() == 0 {
			continue
		}
		b := h
		b.share, b.depth = h.share*float64(w.GetWeight())/float64(total), h.depth+1
		if err := e.cluster(b, w.GetName(), c); err != nil {
			return err
		}
	}
	return nil
}

// rbac applies one RBAC engine (network or HTTP filter); false means the
// request stops here with 403 (for TCP the connection is closed; the
// outcome still says 403 so tests read the same).
func (e *evaluator) rbac(h at, name string, rules *rbacv3.RBAC, c rbacCtx) bool {
	if rules == nil {
		// An RBAC filter without rules allows everything (rbac.proto).
		e.hop(h, "rbac", name, "no rules: allowed", "")
		return true
	}
	allowed, policy, err := rbacDecide(rules, c)
	who := c.principal
	if who == "" {
		who = "no peer identity"
	}
	if err != nil {
		e.status(h, 403, "rbac", name, err.Error()+": treated as deny", "")
		return false
	}
	action := strings.ToLower(rules.GetAction().String())
	origin := e.origins.policy(h.class, policy)
	switch {
	case allowed && policy != "":
		e.hop(h, "rbac", name, fmt.Sprintf("%s: policy %s matches %s: allowed", action, policy, who), origin)
	case allowed:
		e.hop(h, "rbac", name, fmt.Sprintf("%s: no policy matches %s: allowed", action, who), "")
	case policy != "":
		e.status(h, 403, "rbac", name, fmt.Sprintf("%s: policy %s matches %s: denied (403)", action, policy, who), origin)
	default:
		e.status(h, 403, "rbac", name, fmt.Sprintf("%s: no policy matches %s: denied (403)", action, who), e.origins.policy(h.class, ""))
	}
	return allowed
}

// socketAddr formats an endpoint address.
func socketAddr(a *corev3.Address) (string, int) {
	sa := a.GetSocketAddress()
	return sa.GetAddress(), int(sa.GetPortValue())
}
