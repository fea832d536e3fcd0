package envoystrict

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

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
	// entries is every address of the set's listeners, sorted by key and,
	// within a key, in Envoy's order (one slice, not a map: most sets
	// are seen by one class only).
	entries []keyedEntry
	clashes []addrClash
}

// keyedEntry is an addrEntry with its address's key.
type keyedEntry struct {
	key addrKey
	addrEntry
}

// compareKeys orders address keys (any total order will do).
func compareKeys(a, b addrKey) int {
	if a.kind != b.kind {
		return cmp.Compare(a.kind, b.kind)
	}
	if a.port != b.port {
		return cmp.Compare(a.port, b.port)
	}
	if c := a.ip.Compare(b.ip); c != 0 {
		return c
	}
	return strings.Compare(a.host, b.host)
}

// on returns the set's entries on address k, in Envoy's order.
func (sa *sharedAddrs) on(k addrKey) []addrEntry {
	i, _ := slices.BinarySearchFunc(sa.entries, k, func(e keyedEntry, k addrKey) int { return compareKeys(e.key, k) })
	var out []addrEntry
	for ; i < len(sa.entries) && sa.entries[i].key == k; i++ {
		out = append(out, sa.entries[i].addrEntry)
	}
	return out
}

// sharedAddrs walks the set's listeners once.
func (c *Checker) sharedAddrs(sf *setFacts) *sharedAddrs {
	if sf.addrs != nil {
		return sf.addrs
	}
	sa := &sharedAddrs{}
	for _, r := range sf.listeners {
		for i, a := range c.res[r].addrs {
			sa.entries = append(sa.entries, keyedEntry{key: a.key, addrEntry: addrEntry{r: r, i: i}})
		}
	}
	slices.SortStableFunc(sa.entries, func(a, b keyedEntry) int { return compareKeys(a.key, b.key) })
	for i := 0; i < len(sa.entries); {
		j := i + 1
		for j < len(sa.entries) && sa.entries[j].key == sa.entries[i].key {
			j++
		}
		if j-i > 1 {
			group := make([]addrEntry, 0, j-i)
			for _, e := range sa.entries[i:j] {
				group = append(group, e.addrEntry)
			}
			sa.clashes = c.clashesOn(sa.clashes, group)
		}
		i = j
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
	if len(cs) < 2 {
		return
	}
	slices.SortStableFunc(cs, func(a, b addrClash) int {
		if c := strings.Compare(a.r.Name, b.r.Name); c != 0 {
			return c
		}
		if a.own != b.own {
			if a.own {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.i, b.i)
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
	// The own listeners' addresses, sorted by key (stable: Envoy's order
	// within a key).
	var own []keyedEntry
	for _, r := range cl.Own.Resources(resource.ListenerType) {
		for i, a := range c.res[r].addrs {
			own = append(own, keyedEntry{key: a.key, addrEntry: addrEntry{r: r, i: i, own: true}})
		}
	}
	clashes := sa.clashes
	if len(own) > 0 {
		slices.SortStableFunc(own, func(a, b keyedEntry) int { return compareKeys(a.key, b.key) })
		mine := func(k addrKey) bool {
			_, ok := slices.BinarySearchFunc(own, k, func(e keyedEntry, k addrKey) int { return compareKeys(e.key, k) })
			return ok
		}
		clashes = nil
		for _, cs := range sa.clashes {
			if !mine(cs.a.key) {
				clashes = append(clashes, cs)
			}
		}
		for i := 0; i < len(own); {
			j := i + 1
			for j < len(own) && own[j].key == own[i].key {
				j++
			}
			if shared := sa.on(own[i].key); len(shared) > 0 || j-i > 1 {
				group := make([]addrEntry, 0, j-i)
				for _, e := range own[i:j] {
					group = append(group, e.addrEntry)
				}
				clashes = c.clashesOn(clashes, mergeEntries(shared, group))
			}
			i = j
		}
		sortClashes(clashes)
	}
	for _, cs := range clashes {
		if c.once(cs.r, "addr:"+cs.prev.Name) {
			c.errorf(CodeDuplicateAddress, cs.r, "", "proxy %q: listeners %q and %q are both on %s (Envoy refuses a second listener on an address, bound or not)", cl.Name, cs.prev.Name, cs.r.Name, cs.a)
		}
	}
}
