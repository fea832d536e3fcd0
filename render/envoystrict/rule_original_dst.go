package envoystrict

import (
	"net/netip"
	"sort"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Rule: captured traffic has somewhere to go.
//
// With iptables capture, every outbound connection of the pod arrives at
// one bound listener with use_original_dst, which hands it to the listener
// whose address matches the connection's original destination: exactly
// address:port first, then the any-address 0.0.0.0:port (or [::]:port)
// (ConnectionHandlerImpl::getBalancedHandlerByAddress /
// findActiveListenerByAddress, source/common/listener_manager/
// connection_handler_impl.cc). When none matches, the connection stays on
// the capturing listener and takes its own chains (passthrough or
// blackhole): a mesh service the class may call would silently bypass
// routing, mTLS and policy. Listeners with bind_to_port false receive
// nothing else: the listener docs (api/envoy/config/listener/v3/
// listener.proto, bind_to_port and use_original_dst) say such a listener
// only gets connections handed over by a use_original_dst listener, so one
// without it is dead config. Inbound, the capturing listener
// ("virtualInbound") must have a filter chain matching each port of the
// service by destination_port, or inbound connections to that port fall
// to its default chain.
//
// Envoy loads all of these without complaint; they are rules of the
// capture model (DESIGN.md, "Sidecars in a pod"), held here because only
// the resources show whether the shape keeps them.
//
//  1. A class with a listener that does not bind must have a bound
//     use_original_dst listener.
//  2. When a class has a bound use_original_dst listener, every outbound
//     destination in Capture resolves to another listener, by address:port
//     and then by the any-address on that port.
//  3. When a class has Capture.InboundListener, it has a filter chain with
//     destination_port equal to each of Capture.InboundPorts; a class
//     that captures outbound traffic must have it.

// Capture is what a class's traffic capture redirects: the caller knows it
// from the model (which services the class calls, on which VIPs and
// ports), the resources must serve it.
type Capture struct {
	// Outbound are the destinations the class's application can connect
	// to through the capture.
	Outbound []Destination
	// InboundListener names the listener inbound capture redirects to.
	InboundListener string
	// InboundPorts are the ports inbound connections arrive on (the
	// application's target ports).
	InboundPorts []Port
}

// Destination is one captured outbound destination.
type Destination struct {
	// Address is the destination's VIP, or "" when it has none (only the
	// any-address listener can take it).
	Address string
	Port    uint32
	// Path is the model path of what declares the destination.
	Path string
}

// Port is one captured inbound port.
type Port struct {
	Port uint32
	Path string
}

// checkCapture applies the capture rules to one class. Classes of one
// namespace and dependency set share their outbound listeners (the shared
// set) and their Capture.Outbound slice, so the outbound destinations are
// resolved against the shared set once; only what it leaves unresolved is
// looked up among each class's own listeners.
func (c *Checker) checkCapture(cl Class, sf *setFacts) {
	// The set's listeners first, then the class's own: the first bound
	// use_original_dst one, the first that does not bind, and the last
	// named as the inbound listener. The set's part is found once.
	if sf.capture == nil {
		sf.capture = &sharedCapture{}
		sf.capture.origDst, sf.capture.unbound = c.captureListeners(sf.listeners, nil, nil)
	}
	origDst, unbound := c.captureListeners(cl.Own.Resources(resource.ListenerType), sf.capture.origDst, sf.capture.unbound)
	var inbound *Resource
	if cl.Capture != nil {
		inbound = c.lastNamed(cl.Own.Resources(resource.ListenerType), cl.Capture.InboundListener)
		if inbound == nil {
			inbound = c.lastNamed(sf.listeners, cl.Capture.InboundListener)
		}
	}
	if unbound != nil && origDst == nil && c.once(unbound, "origdst") {
		c.errorf(CodeCapture, unbound, "", "proxy %q: listener %q does not bind its port, and no bound use_original_dst listener hands it connections", cl.Name, unbound.Name)
	}
	if cl.Capture == nil || origDst == nil && inbound == nil {
		return
	}
	if origDst != nil {
		if pending := c.unresolvedByShared(cl, sf); len(pending) > 0 {
			own := addressKeys(c, cl.Own.Resources(resource.ListenerType))
			for _, d := range pending {
				dest := joinHostPort(orAnyAddr(d.Address), d.Port)
				if !resolves(own, d) && c.once(origDst, "capture:"+dest) {
					c.errorf(CodeCapture, origDst, d.Path, "proxy %q: captured destination %s has no listener (by address or 0.0.0.0 on its port); its connections would stay on %q", cl.Name, dest, origDst.Name)
				}
			}
		}
	}
	if inbound == nil {
		if len(cl.Capture.InboundPorts) > 0 {
			c.errorf(CodeCapture, origDst, "", "proxy %q: captures traffic but has no inbound listener %q", cl.Name, cl.Capture.InboundListener)
		}
		return
	}
	l, _ := inbound.Message.(*listenerv3.Listener)
	for _, p := range cl.Capture.InboundPorts {
		if !hasPortChain(l, p.Port) {
			c.errorf(CodeCapture, inbound, p.Path, "proxy %q: inbound listener %q has no filter chain for destination port %d", cl.Name, inbound.Name, p.Port)
		}
	}
}

// sharedCapture is what checkCapture keeps about a shared set.
type sharedCapture struct {
	origDst, unbound *Resource
}

// captureListeners returns the first bound use_original_dst listener
// with an address and the first listener with an address that does not
// bind, among rs after origDst and unbound found earlier (nil: none yet).
func (c *Checker) captureListeners(rs []*Resource, origDst, unbound *Resource) (*Resource, *Resource) {
	for _, r := range rs {
		f := c.res[r]
		switch {
		case len(f.addrs) == 0:
		case f.origDst && f.bound && origDst == nil:
			origDst = r
		case !f.bound && unbound == nil:
			unbound = r
		}
	}
	return origDst, unbound
}

// lastNamed is the last listener with an address named name in rs
// (sorted by name), or nil.
func (c *Checker) lastNamed(rs []*Resource, name string) *Resource {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Name > name })
	for ; i > 0 && rs[i-1].Name == name; i-- {
		if len(c.res[rs[i-1]].addrs) > 0 {
			return rs[i-1]
		}
	}
	return nil
}

// outboundKey identifies one Outbound slice checked against one set.
type outboundKey struct {
	set   *setFacts
	first *Destination
	n     int
}

// unresolvedByShared returns the class's outbound destinations that no
// listener of its shared set takes, memoised by set and slice.
func (c *Checker) unresolvedByShared(cl Class, sf *setFacts) []Destination {
	out := cl.Capture.Outbound
	if len(out) == 0 {
		return nil
	}
	k := outboundKey{sf, &out[0], len(out)}
	if p, ok := c.outbound[k]; ok {
		return p
	}
	if sf.addrKeys == nil {
		sf.addrKeys = addressKeys(c, sf.listeners)
	}
	var pending []Destination
	for _, d := range out {
		if !resolves(sf.addrKeys, d) {
			pending = append(pending, d)
		}
	}
	c.outbound[k] = pending
	return pending
}

// addressKeys are the addresses of the listeners a use_original_dst
// listener can hand a connection to (all but such listeners themselves).
func addressKeys(c *Checker, rs []*Resource) map[addrKey]bool {
	keys := map[addrKey]bool{}
	for _, r := range rs {
		f := c.res[r]
		if f.origDst {
			continue
		}
		for _, a := range f.addrs {
			keys[a.key] = true
		}
	}
	return keys
}

// resolves reports whether a captured destination finds a listener.
func resolves(addrs map[addrKey]bool, d Destination) bool {
	if d.Address != "" && addrs[socketKey(kindTCP, d.Address, d.Port)] {
		return true
	}
	anyAddr := netip.IPv4Unspecified()
	if a, err := netip.ParseAddr(d.Address); err == nil && a.Is6() && !a.Is4In6() {
		anyAddr = netip.IPv6Unspecified()
	}
	return addrs[addrKey{kind: kindTCP, ip: anyAddr, port: d.Port}]
}

// orAnyAddr is ip, or 0.0.0.0 for a destination without a VIP.
func orAnyAddr(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

// hasPortChain reports whether l has a filter chain for destination port.
func hasPortChain(l *listenerv3.Listener, port uint32) bool {
	for _, fc := range l.GetFilterChains() {
		if fc.GetFilterChainMatch().GetDestinationPort().GetValue() == port {
			return true
		}
	}
	return false
}
