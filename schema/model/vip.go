package model

import (
	"hash/fnv"
	"net/netip"
	"strconv"
)

// DefaultVIPRange is mesh.vipRange's default: the block Istio allocates
// ServiceEntry VIPs from (Class E, never routed; istio/istio
// pilot/pkg/serviceregistry/serviceentry, autoAllocateIPs: "The IPs are
// allocated from the reserved Class E subnet (240.240.0.0/16) that is not
// reachable outside the pod"), so addresses an operator already knows from
// Istio mean the same here and never clash with a cluster's service CIDR.
const DefaultVIPRange = "240.240.0.0/16"

// VIPAssignment is the address of every service: what render binds the
// per-VIP TCP listeners to, what policies check for clashes, and what
// `gitmesh render -o hosts` prints. It is made by Mesh.VIPs only, so the
// three can never disagree.
type VIPAssignment struct {
	// Addresses maps a service name to its VIPs in canonical form (netip's
	// String), declared ones in declaration order. A service without one
	// (vipRange "" or exhausted) is absent.
	Addresses map[string][]string
	// Source says where a service's addresses came from: VIPDeclared,
	// VIPDiscovered or VIPAllocated.
	Source map[string]string
	// Unallocated lists, sorted, the services that needed a VIP from
	// vipRange when no free address was left.
	Unallocated []string
}

// Where a service's VIPs come from.
const (
	VIPDeclared   = "declared"
	VIPDiscovered = "discovered"
	VIPAllocated  = "allocated"
)

// VIPs assigns every service its addresses: the declared ones
// (services.NAME.addresses), else the discovered ones (discovered, keyed by
// service name: Kubernetes ClusterIPs; nil when there is no discovery), else
// one allocated from mesh.vipRange.
//
// Allocation hashes NAMESPACE/NAME (FNV-32a, as Istio hashes its
// ServiceEntry keys) to a slot of the range and, when the slot is taken,
// probes the next ones; services are placed in name order and declared or
// discovered addresses are taken first. So a service's VIP depends on its
// own name and not on how many services there are: adding or removing
// another service moves nobody, except a service whose probe chain that one
// lands in, which with 65,534 slots (the default /16) and a few thousand
// services is rare and only ever the colliding pair. A counter in name order
// (the obvious alternative) would renumber every service after an inserted
// name. The network and broadcast addresses of an IPv4 range, and the
// subnet-router anycast address (offset 0) of an IPv6 one, are never given
// out. Ranges larger than 2^32 addresses use their first 2^32.
func (m *Mesh) VIPs(discovered map[string][]string) *VIPAssignment {
	a := &VIPAssignment{Addresses: map[string][]string{}, Source: map[string]string{}}
	names := m.ServiceNames()
	taken := map[netip.Addr]bool{}
	var need []string
	for _, n := range names {
		s := m.Services[n]
		src, raw := VIPDeclared, s.Addresses
		if len(raw) == 0 {
			src, raw = VIPDiscovered, discovered[n]
		}
		var out []string
		for _, r := range raw {
			ip, err := netip.ParseAddr(r)
			if err != nil {
				continue // the loader reports declared ones; discovery drops bad ones
			}
			ip = ip.Unmap()
			taken[ip] = true
			out = append(out, ip.String())
		}
		if len(out) == 0 {
			need = append(need, n)
			continue
		}
		a.Addresses[n], a.Source[n] = out, src
	}
	r, ok := ParseVIPRange(m.Mesh.VIPRange)
	if !ok {
		return a
	}
	for _, n := range need {
		s := m.Services[n]
		ip, ok := r.allocate(s.Namespace+"/"+s.Name, taken)
		if !ok {
			a.Unallocated = append(a.Unallocated, n)
			continue
		}
		taken[ip] = true
		a.Addresses[n], a.Source[n] = []string{ip.String()}, VIPAllocated
	}
	return a
}

// VIPRange is a parsed mesh.vipRange.
type VIPRange struct {
	prefix netip.Prefix
	// first and n are the usable offsets: first, first+1 … first+n-1.
	first, n uint64
}

// ParseVIPRange parses a vipRange value: a canonical CIDR (no host bits
// set) with at least two usable addresses. ok is false for "" and for
// anything else; the loader reports why (CheckVIPRange).
func ParseVIPRange(cidr string) (VIPRange, bool) {
	if cidr == "" {
		return VIPRange{}, false
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p != p.Masked() {
		return VIPRange{}, false
	}
	bits := p.Addr().BitLen() - p.Bits()
	if bits > 32 {
		bits = 32
	}
	size := uint64(1) << bits
	if size < 4 {
		return VIPRange{}, false
	}
	r := VIPRange{prefix: p, first: 1, n: size - 1}
	if p.Addr().Is4() {
		r.n = size - 2 // network and broadcast
	}
	return r, true
}

// Reserved reports whether ip is an address of the range that is never
// given out (its network or broadcast address): declaring one as a
// service's VIP is a mistake policies report.
func (r VIPRange) Reserved(ip netip.Addr) bool {
	if !r.prefix.Contains(ip) {
		return false
	}
	off, ok := r.offset(ip)
	return ok && (off < r.first || off >= r.first+r.n)
}

// Contains reports whether ip is in the range.
func (r VIPRange) Contains(ip netip.Addr) bool { return r.prefix.Contains(ip) }

// allocate finds key's address: its hash slot or the next free one.
func (r VIPRange) allocate(key string, taken map[netip.Addr]bool) (netip.Addr, bool) {
	h := fnv.New32a()
	h.Write([]byte(key))
	start := uint64(h.Sum32()) % r.n
	for i := uint64(0); i < r.n; i++ {
		ip := r.at(r.first + (start+i)%r.n)
		if !taken[ip] {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// at is the address at offset off from the range's base address.
func (r VIPRange) at(off uint64) netip.Addr {
	b := r.prefix.Addr().As16()
	v := uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	v += uint32(off)
	b[12], b[13], b[14], b[15] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	ip := netip.AddrFrom16(b)
	if r.prefix.Addr().Is4() {
		ip = ip.Unmap()
	}
	return ip
}

// offset is ip's offset from the range's base, when it is within the first
// 2^32 addresses.
func (r VIPRange) offset(ip netip.Addr) (uint64, bool) {
	if ip.Is4() != r.prefix.Addr().Is4() {
		return 0, false
	}
	a, b := ip.As16(), r.prefix.Addr().As16()
	for i := 0; i < 12; i++ {
		if a[i] != b[i] {
			return 0, false
		}
	}
	va := uint32(a[12])<<24 | uint32(a[13])<<16 | uint32(a[14])<<8 | uint32(a[15])
	vb := uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])
	return uint64(va - vb), true
}

// CheckVIPAddress says what is wrong with a declared service address, or
// "" when it is a usable unicast IP: the loader reports it at the value.
func CheckVIPAddress(s string) string {
	ip, err := netip.ParseAddr(s)
	switch {
	case err != nil || ip.Zone() != "":
		return "must be an IPv4 or IPv6 address"
	case ip.IsUnspecified(), ip.IsLoopback(), ip.IsMulticast(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "must be a unicast address a workload can dial (not unspecified, loopback, link-local, multicast or broadcast)"
	}
	return ""
}

// CheckVIPRange says what is wrong with a mesh.vipRange value (the message
// quotes the value), or "".
func CheckVIPRange(s string) string {
	if s == "" {
		return ""
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return "must be a CIDR such as \"240.240.0.0/16\", or \"\" to allocate no VIPs (got " + strconv.Quote(s) + ")"
	case p != p.Masked():
		return "must have no host bits set (got " + strconv.Quote(s) + ", want " + strconv.Quote(p.Masked().String()) + ")"
	}
	if _, ok := ParseVIPRange(s); !ok {
		return "must hold at least 4 addresses (got " + strconv.Quote(s) + ")"
	}
	return ""
}
