package model

import (
	"fmt"
	"net/netip"
	"testing"
)

func vipMesh(vipRange string, names ...string) *Mesh {
	m := &Mesh{Mesh: MeshConfig{VIPRange: vipRange}, Services: map[string]*Service{}}
	for _, n := range names {
		m.Services[n] = &Service{Name: n, Namespace: "default"}
	}
	return m
}

func TestVIPsSources(t *testing.T) {
	m := vipMesh(DefaultVIPRange, "a", "b", "c")
	m.Services["a"].Addresses = []string{"10.96.0.12", "fd00:0:0::c"}
	a := m.VIPs(map[string][]string{"a": {"10.0.0.1"}, "b": {"10.96.0.13", "bogus"}})
	if got := fmt.Sprintln(a.Addresses["a"], a.Source["a"]); got != "[10.96.0.12 fd00::c] declared\n" {
		t.Errorf("a: %s (declared addresses win over discovered, canonical form)", got)
	}
	if got := fmt.Sprintln(a.Addresses["b"], a.Source["b"]); got != "[10.96.0.13] discovered\n" {
		t.Errorf("b: %s", got)
	}
	ip := netip.MustParseAddr(a.Addresses["c"][0])
	if a.Source["c"] != VIPAllocated || !netip.MustParsePrefix(DefaultVIPRange).Contains(ip) {
		t.Errorf("c: %v %s, want one address allocated from %s", a.Addresses["c"], a.Source["c"], DefaultVIPRange)
	}
}

// TestVIPsStable pins the property the allocation is built for: a
// service's VIP does not move when other services come and go.
func TestVIPsStable(t *testing.T) {
	var names []string
	for i := 0; i < 2000; i++ {
		names = append(names, fmt.Sprintf("svc-%04d", i))
	}
	all := vipMesh(DefaultVIPRange, names...).VIPs(nil)
	half := vipMesh(DefaultVIPRange, names[1000:]...).VIPs(nil)
	moved := 0
	for _, n := range names[1000:] {
		if all.Addresses[n][0] != half.Addresses[n][0] {
			moved++
		}
	}
	// Only services whose hash slot collided with a removed one may move:
	// about 1000·2000/65534 ≈ 30 here (plus probe runs), not all 1000.
	if moved > 80 {
		t.Errorf("%d of 1000 VIPs moved when 1000 other services were removed", moved)
	}
	again := vipMesh(DefaultVIPRange, names...).VIPs(nil)
	seen := map[string]string{}
	for _, n := range names {
		v := all.Addresses[n][0]
		if again.Addresses[n][0] != v {
			t.Fatalf("%s: %s then %s: allocation is not deterministic", n, v, again.Addresses[n][0])
		}
		if o, dup := seen[v]; dup {
			t.Fatalf("%s and %s both got %s", o, n, v)
		}
		seen[v] = n
	}
}

// TestVIPsSmallRange fills a /30 (two usable addresses): network and
// broadcast are never given out, declared addresses are skipped, and a
// service left without an address is reported.
func TestVIPsSmallRange(t *testing.T) {
	m := vipMesh("10.1.0.0/30", "a", "b", "c")
	m.Services["a"].Addresses = []string{"10.1.0.1"}
	a := m.VIPs(nil)
	got := fmt.Sprint(a.Addresses["b"], a.Addresses["c"], a.Unallocated)
	if got != "[10.1.0.2] [] [c]" {
		t.Errorf("got %s, want b on the one free address and c unallocated", got)
	}
	r, _ := ParseVIPRange("10.1.0.0/30")
	for _, ip := range []string{"10.1.0.0", "10.1.0.3"} {
		if !r.Reserved(netip.MustParseAddr(ip)) {
			t.Errorf("%s: not reserved", ip)
		}
	}
	if r.Reserved(netip.MustParseAddr("10.1.0.2")) {
		t.Error("10.1.0.2 reserved")
	}
}

func TestVIPsIPv6AndOff(t *testing.T) {
	a := vipMesh("2001:2::/48", "a").VIPs(nil)
	if ip := netip.MustParseAddr(a.Addresses["a"][0]); !ip.Is6() || !netip.MustParsePrefix("2001:2::/48").Contains(ip) {
		t.Errorf("got %v", a.Addresses["a"])
	}
	if a := vipMesh("", "a").VIPs(nil); len(a.Addresses) != 0 || len(a.Unallocated) != 0 {
		t.Errorf("vipRange \"\": got %v %v, want no VIPs", a.Addresses, a.Unallocated)
	}
}

func TestCheckVIP(t *testing.T) {
	for in, want := range map[string]bool{"10.96.0.1": true, "fd00::1": true, "0.0.0.0": false, "::1": false, "224.0.0.1": false, "fe80::1%eth0": false, "x": false, "255.255.255.255": false} {
		if ok := CheckVIPAddress(in) == ""; ok != want {
			t.Errorf("CheckVIPAddress(%q) ok=%v, want %v", in, ok, want)
		}
	}
	for in, want := range map[string]bool{"": true, "240.240.0.0/16": true, "2001:2::/48": true, "10.0.0.1/8": false, "10.0.0.0/31": false, "nope": false} {
		if ok := CheckVIPRange(in) == ""; ok != want {
			t.Errorf("CheckVIPRange(%q) ok=%v, want %v", in, ok, want)
		}
	}
}
