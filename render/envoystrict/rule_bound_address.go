package envoystrict

import (
	"net/netip"
	"sort"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Rule: no two listeners of a class share an address.
//
// Envoy: ListenerManagerImpl::setNewOrDrainingSocketFactory
// (source/common/listener_manager/listener_manager_impl.cc) refuses a new
// listener when hasListenerWithDuplicatedAddress finds an active or
// warming one with the same address ("error adding listener: '{}' has
// duplicate address '{}' as existing listener"), and the NACK takes the
// whole LDS update with it. The comparison is ListenerImpl::
// hasDuplicatedAddress (source/common/listener_manager/listener_impl.cc):
// same socket type (stream or datagram) and an equal address, for every
// port other than 0 WHETHER OR NOT EITHER LISTENER BINDS — a listener
// with bind_to_port false is still found by address when an original-dst
// listener hands a connection over, so two of them on one address are as
// ambiguous as two bound ones. Port 0 (ephemeral) clashes only when the
// existing listener does not bind. Envoy adds a response's listeners in
// order, and ours are sorted by name, so "existing" is the one whose name
// sorts first. Every address counts: additional_addresses too.
//
// So the rule is stricter than its name in the issue ("two bound
// listeners"): it is the rule Envoy applies. API listeners (proxyless)
// have no socket and are exempt.

// address is one listener socket address, normalised for comparison.
type address struct {
	key addrKey
	// port is the port (1 for sockets without one, which always clash).
	port uint32
}

// addrKey is an address as Envoy compares them: socket type, host and
// port. An IP is kept parsed (equal IPs in different spellings are
// equal), anything else as text; comparing structs instead of formatted
// strings keeps the per-listener and per-destination work free of
// allocations.
type addrKey struct {
	kind addrKind
	ip   netip.Addr
	host string
	port uint32
}

// addrKind is the socket type of an address.
type addrKind uint8

const (
	kindTCP addrKind = iota
	kindUDP
	kindPipe
	kindInternal
)

// socketKey is the key of a TCP or UDP address host:port.
func socketKey(kind addrKind, host string, port uint32) addrKey {
	if p, err := netip.ParseAddr(host); err == nil {
		return addrKey{kind: kind, ip: p, port: port}
	}
	return addrKey{kind: kind, host: host, port: port}
}

// String is the address as findings show it: IP:PORT (IPv6 bracketed),
// or a pipe's path or internal listener's name.
func (a address) String() string {
	if a.key.kind == kindPipe || a.key.kind == kindInternal {
		return a.key.host
	}
	host := a.key.host
	if a.key.ip.IsValid() {
		host = a.key.ip.String()
	}
	return joinHostPort(host, a.key.port)
}

// listenerAddresses records a listener's addresses and binding facts.
func (w *walk) listenerAddresses(l *listenerv3.Listener) {
	w.f.bound = l.GetBindToPort() == nil || l.GetBindToPort().GetValue()
	w.f.origDst = l.GetUseOriginalDst().GetValue()
	if l.GetApiListener() != nil {
		return
	}
	add := func(a *corev3.Address) {
		if a == nil {
			return
		}
		switch {
		case a.GetSocketAddress() != nil:
			sa := a.GetSocketAddress()
			kind := kindTCP
			if sa.GetProtocol() == corev3.SocketAddress_UDP {
				kind = kindUDP
			}
			port := sa.GetPortValue()
			w.f.addrs = append(w.f.addrs, address{key: socketKey(kind, sa.GetAddress(), port), port: port})
		case a.GetPipe() != nil:
			w.f.addrs = append(w.f.addrs, address{key: addrKey{kind: kindPipe, host: a.GetPipe().GetPath()}, port: 1})
		case a.GetEnvoyInternalAddress() != nil:
			w.f.addrs = append(w.f.addrs, address{key: addrKey{kind: kindInternal, host: a.GetEnvoyInternalAddress().GetServerListenerName()}, port: 1})
		}
	}
	add(l.GetAddress())
	for _, aa := range l.GetAdditionalAddresses() {
		add(aa.GetAddress())
	}
}

// joinHostPort formats ip:port, bracketing IPv6.
func joinHostPort(ip string, port uint32) string {
	if p, err := netip.ParseAddr(ip); err == nil && p.Is6() {
		ip = "[" + ip + "]"
	}
	return ip + ":" + strconv.FormatUint(uint64(port), 10)
}

// Envoy adds a class's listeners in name order, so for each address the
// listener whose name sorts first is the "existing" one and every later
// one on that address is refused. A class's listeners are its shared
// set's and its own. The shared set is walked once (sharedAddrs): its
// listeners by address and the clashes among them. Per class only the
// addresses its own listeners use are merged with the set's listeners on
// those addresses; every other address clashes exactly as in the set
// alone. So a class costs its own listeners, not the layer's.

// addrEntry is one address of one listener, in Envoy's order.
type addrEntry struct {
	r *Resource
	// i is the address's index among the listener's addresses.
	i int
	// own is whether r is the class's own (it sorts after a shared
	// listener of the same name, as the stable merge puts it).
	own bool
}

// addrClash is one listener Envoy would refuse: r's address a is
// already prev's.
type addrClash struct {
	addrEntry
	prev *Resource
	a    address
}

// sharedAddrs is what checkAddresses keeps about a shared set.
type sharedAddrs struct {
	byKey   map[addrKey][]addrEntry
	clashes []addrClash
}

// sharedAddrs walks the set's listeners once.
func (c *Checker) sharedAddrs(sf *setFacts) *sharedAddrs {
	if sf.addrs != nil {
		return sf.addrs
	}
	sa := &sharedAddrs{byKey: map[addrKey][]addrEntry{}}
	var order []addrKey
	for _, r := range sf.listeners {
		for i, a := range c.res[r].addrs {
			if len(sa.byKey[a.key]) == 0 {
				order = append(order, a.key)
			}
			sa.byKey[a.key] = append(sa.byKey[a.key], addrEntry{r: r, i: i})
		}
	}
	for _, k := range order {
		sa.clashes = c.clashesOn(sa.clashes, sa.byKey[k])
	}
	sortClashes(sa.clashes)
	sf.addrs = sa
	return sa
}

// clashesOn appends the clashes among one address's entries (in Envoy's
// order): each one after the first is refused, except on port 0 when the
// first binds.
func (c *Checker) clashesOn(out []addrClash, entries []addrEntry) []addrClash {
	if len(entries) < 2 {
		return out
	}
	prev := entries[0].r
	for _, e := range entries[1:] {
		a := c.res[e.r].addrs[e.i]
		if prev == e.r || (a.port == 0 && c.res[prev].bound) {
			continue
		}
		out = append(out, addrClash{addrEntry: e, prev: prev, a: a})
	}
	return out
}

// sortClashes puts clashes in the order Envoy meets them: by listener
// name (shared before own), then address.
func sortClashes(cs []addrClash) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.r.Name != b.r.Name {
			return a.r.Name < b.r.Name
		}
		if a.own != b.own {
			return !a.own
		}
		return a.i < b.i
	})
}

// mergeEntries merges one address's shared and own entries by listener
// name, shared first on equal names.
func mergeEntries(shared, own []addrEntry) []addrEntry {
	out := make([]addrEntry, 0, len(shared)+len(own))
	i, j := 0, 0
	for i < len(shared) && j < len(own) {
		if shared[i].r.Name <= own[j].r.Name {
			out = append(out, shared[i])
			i++
		} else {
			out = append(out, own[j])
			j++
		}
	}
	out = append(out, shared[i:]...)
	return append(out, own[j:]...)
}

// checkAddresses reports listeners of the class that Envoy would refuse
// for an address an earlier one has.
func (c *Checker) checkAddresses(cl Class, sf *setFacts) {
	sa := c.sharedAddrs(sf)
	var ownBy map[addrKey][]addrEntry
	var order []addrKey
	for _, r := range cl.Own.Resources(resource.ListenerType) {
		for i, a := range c.res[r].addrs {
			if ownBy == nil {
				ownBy = map[addrKey][]addrEntry{}
			}
			if len(ownBy[a.key]) == 0 {
				order = append(order, a.key)
			}
			ownBy[a.key] = append(ownBy[a.key], addrEntry{r: r, i: i, own: true})
		}
	}
	clashes := sa.clashes
	if len(order) > 0 {
		clashes = nil
		for _, cs := range sa.clashes {
			if _, mine := ownBy[cs.a.key]; !mine {
				clashes = append(clashes, cs)
			}
		}
		for _, k := range order {
			clashes = c.clashesOn(clashes, mergeEntries(sa.byKey[k], ownBy[k]))
		}
		sortClashes(clashes)
	}
	for _, cs := range clashes {
		if c.once(cs.r, "addr:"+cs.prev.Name) {
			c.errorf(CodeDuplicateAddress, cs.r, "", "proxy %q: listeners %q and %q are both on %s (Envoy refuses a second listener on an address, bound or not)", cl.Name, cs.prev.Name, cs.r.Name, cs.a)
		}
	}
}
