// Package capture builds and installs the iptables rules that send a
// sidecar pod's TCP through its proxy: outbound connections to the virtual
// outbound listener (proxyports.Outbound, use_original_dst) and inbound
// connections to the virtual inbound listener (proxyports.Inbound), except
// the proxy's own traffic and the ports and CIDRs excluded. `gitmesh
// capture` runs it in an init container, as istio-init runs istio-iptables.
//
// Rules is a pure function from a Config to the rule set. Two backends
// install it: Exec hands it to iptables-restore; NFT respells the same
// rules for nftables (NFTRules) and programs them over netlink in a table
// of its own (table ip gitmesh / ip6 gitmesh), for images such as
// gitmesh's own that have no iptables binary. The rules mirror Istio's REDIRECT mode
// (tools/istio-iptables/pkg/capture/run.go in github.com/istio/istio) rule
// for rule, each group citing the part of run.go it copies, so what an
// operator knows about a pod's iptables in an Istio mesh holds here.
//
// The chains keep Istio's names (ISTIO_INBOUND, ISTIO_IN_REDIRECT,
// ISTIO_OUTPUT, ISTIO_REDIRECT) rather than GITMESH_*: the runbooks,
// `iptables-save` reading habits and debugging guides written for Istio
// apply unchanged, and a pod is captured by one mesh or the other, never
// both (two sets of chains redirecting to two proxies would be a bug that
// distinct names would hide rather than prevent).
package capture

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/gitmesh/gitmesh/internal/proxyports"
)

// The chains of the nat table the rules own. Apply flushes and refills
// them; Cleanup deletes them and the jumps to them.
const (
	ChainInbound    = "ISTIO_INBOUND"
	ChainInRedirect = "ISTIO_IN_REDIRECT"
	ChainOutput     = "ISTIO_OUTPUT"
	ChainRedirect   = "ISTIO_REDIRECT"
)

// Chains lists our chains in the order they are declared (Istio's order).
func Chains() []string {
	return []string{ChainInbound, ChainRedirect, ChainInRedirect, ChainOutput}
}

// Config is what the capture rules depend on. Default gives Istio's
// defaults with gitmesh's ports; the zero value is not valid.
type Config struct {
	// ProxyUID and ProxyGID are the proxy's user and group: their traffic
	// is never redirected to the proxy again (it would loop).
	ProxyUID, ProxyGID int
	// OutboundPort and InboundPort are the virtual listeners' ports.
	OutboundPort, InboundPort int
	// InboundPorts are the inbound destination ports captured.
	InboundPorts Ports
	// ExcludeInboundPorts are not captured when InboundPorts is all ports.
	// proxyports.Reserved() is always excluded on top (the kubelet's probe
	// of the health port and Prometheus' scrape of the stats port reach the
	// proxy itself).
	ExcludeInboundPorts []int
	// ExcludeOutboundPorts are outbound destination ports not captured
	// (TCP and UDP, as Istio).
	ExcludeOutboundPorts []int
	// ExcludeOutboundCIDRs are outbound destinations not captured.
	ExcludeOutboundCIDRs []netip.Prefix
	// IncludeOutboundCIDRs are the outbound destinations captured.
	IncludeOutboundCIDRs CIDRs
	// IPv6 also builds the ip6tables rules; without it, IPv6 CIDRs are an
	// error rather than silently ignored.
	IPv6 bool
}

// Ports is a set of ports or all ports ("*").
type Ports struct {
	All  bool
	List []int
}

// CIDRs is a set of prefixes or every address ("*").
type CIDRs struct {
	All  bool
	List []netip.Prefix
}

// Default is the configuration of an injected sidecar: the proxy's uid and
// ports from proxyports, every inbound port and every outbound address
// captured, nothing excluded beyond the reserved ports.
func Default() Config {
	return Config{
		ProxyUID:             proxyports.ProxyUID,
		ProxyGID:             proxyports.ProxyGID,
		OutboundPort:         proxyports.Outbound,
		InboundPort:          proxyports.Inbound,
		InboundPorts:         Ports{All: true},
		IncludeOutboundCIDRs: CIDRs{All: true},
	}
}

// maxUID is the largest valid uid or gid: (uid_t)-1 means "no change" to
// the kernel and cannot own a socket.
const maxUID = 1<<32 - 2

// Validate reports the first thing wrong with c: ports outside 1..65535,
// ids outside 0..4294967294, a captured inbound port the proxy reserves,
// an excluded range covering everything, IPv6 prefixes without IPv6.
func (c Config) Validate() error {
	for _, id := range []struct {
		name string
		v    int
	}{{"proxy uid", c.ProxyUID}, {"proxy gid", c.ProxyGID}} {
		if id.v < 0 || id.v > maxUID {
			return fmt.Errorf("%s: must be between 0 and %d (got %d)", id.name, maxUID, id.v)
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"outbound port", c.OutboundPort}, {"inbound port", c.InboundPort}} {
		if err := checkPort(p.name, p.v); err != nil {
			return err
		}
	}
	if c.OutboundPort == c.InboundPort {
		return fmt.Errorf("outbound port and inbound port: must differ (both %d)", c.OutboundPort)
	}
	for i, p := range c.InboundPorts.List {
		if err := checkPort(fmt.Sprintf("inbound ports[%d]", i), p); err != nil {
			return err
		}
		if slices.Contains(proxyports.Reserved(), p) {
			return fmt.Errorf("inbound ports[%d]: %d is reserved for the proxy and never captured", i, p)
		}
	}
	for i, p := range c.ExcludeInboundPorts {
		if err := checkPort(fmt.Sprintf("excluded inbound ports[%d]", i), p); err != nil {
			return err
		}
	}
	for i, p := range c.ExcludeOutboundPorts {
		if err := checkPort(fmt.Sprintf("excluded outbound ports[%d]", i), p); err != nil {
			return err
		}
	}
	for i, p := range c.ExcludeOutboundCIDRs {
		what := fmt.Sprintf("excluded outbound CIDRs[%d]", i)
		if err := c.checkPrefix(what, p); err != nil {
			return err
		}
		// As Istio (run.go: "invalid value for OUTBOUND_IP_RANGES_EXCLUDE"):
		// excluding everything is a way to say "no capture" that hides a typo.
		if p.Bits() == 0 {
			return fmt.Errorf("%s: %q excludes every address; capture nothing by not running capture", what, p.String())
		}
	}
	for i, p := range c.IncludeOutboundCIDRs.List {
		if err := c.checkPrefix(fmt.Sprintf("included outbound CIDRs[%d]", i), p); err != nil {
			return err
		}
	}
	return nil
}

func checkPort(what string, p int) error {
	if p < 1 || p > 65535 {
		return fmt.Errorf("%s: must be between 1 and 65535 (got %d)", what, p)
	}
	return nil
}

func (c Config) checkPrefix(what string, p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("%s: not a valid prefix", what)
	}
	if p != p.Masked() {
		return fmt.Errorf("%s: %q has host bits set (want %q)", what, p.String(), p.Masked().String())
	}
	if p.Addr().Is6() && !p.Addr().Is4In6() && !c.IPv6 {
		return fmt.Errorf("%s: %q is IPv6 but IPv6 capture is off", what, p.String())
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%s: %q is an IPv4-mapped IPv6 prefix; write it as IPv4", what, p.String())
	}
	return nil
}

// excludedInbound is the user's exclusions plus the reserved ports,
// deduplicated and sorted so the rules do not depend on flag order.
func (c Config) excludedInbound() []int {
	ports := append(slices.Clone(c.ExcludeInboundPorts), proxyports.Reserved()...)
	slices.Sort(ports)
	return slices.Compact(ports)
}
