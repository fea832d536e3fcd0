package capture

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Family is the IP version a table of rules is for.
type Family string

// The two families: iptables-restore takes IPv4, ip6tables-restore IPv6.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// Rule is one rule of the nat table: appended to Chain, matching and
// jumping as Args says (the words after `-A CHAIN` in iptables-restore).
type Rule struct {
	Chain string   `json:"chain"`
	Args  []string `json:"args"`
}

// String is the rule as iptables-restore and iptables-save spell it.
func (r Rule) String() string {
	return "-A " + r.Chain + " " + strings.Join(r.Args, " ")
}

// Table is the rule set of one family: our chains and the rules, in order.
type Table struct {
	Family Family   `json:"family"`
	Table  string   `json:"table"`
	Chains []string `json:"chains"`
	Rules  []Rule   `json:"rules"`
}

// RuleSet is what Rules builds: the IPv4 table and, with IPv6 on, the IPv6
// table.
type RuleSet struct {
	V4 Table  `json:"ipv4"`
	V6 *Table `json:"ipv6,omitempty"`
}

// Tables lists the rule set's tables, IPv4 first.
func (rs RuleSet) Tables() []Table {
	if rs.V6 == nil {
		return []Table{rs.V4}
	}
	return []Table{rs.V4, *rs.V6}
}

// Rules builds the capture rules for c. It is pure: the same Config gives
// the same rules, byte for byte.
func Rules(c Config) (RuleSet, error) {
	if err := c.Validate(); err != nil {
		return RuleSet{}, err
	}
	rs := RuleSet{V4: build(c, IPv4)}
	if c.IPv6 {
		v6 := build(c, IPv6)
		rs.V6 = &v6
	}
	return rs, nil
}

// addresses are the loopback addresses Istio's rules name per family
// (run.go: HostIPv4LoopbackCidr "127.0.0.1/32" / "::1/128", and the
// inbound passthrough's bind address "127.0.0.6/32" / "::6/128").
type addresses struct {
	loopback    string
	passthrough string
}

func familyAddresses(f Family) addresses {
	if f == IPv6 {
		return addresses{loopback: "::1/128", passthrough: "::6/128"}
	}
	return addresses{loopback: "127.0.0.1/32", passthrough: "127.0.0.6/32"}
}

// build is Istio's IptablesConfigurator.Run for REDIRECT mode, without
// what gitmesh has no use for (DNS capture, the HBONE tunnel port 15008,
// TPROXY, interface exclusions, owner groups). Each group names the part
// of tools/istio-iptables/pkg/capture/run.go it mirrors.
func build(c Config, f Family) Table {
	t := Table{Family: f, Table: "nat", Chains: Chains()}
	add := func(chain string, args ...string) {
		t.Rules = append(t.Rules, Rule{Chain: chain, Args: args})
	}
	a := familyAddresses(f)
	uid, gid := strconv.Itoa(c.ProxyUID), strconv.Itoa(c.ProxyGID)

	// run.go Run: "Create a new chain for redirecting outbound traffic to
	// the common Envoy port" and "Use this chain also for redirecting
	// inbound traffic to the common Envoy port when not using TPROXY".
	add(ChainRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(c.OutboundPort))
	add(ChainInRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-ports", strconv.Itoa(c.InboundPort))

	// run.go handleInboundPortsInclude (nat table): every inbound TCP
	// packet goes through ISTIO_INBOUND; with "*" the exclusions return
	// first and the rest is redirected, with a list only those ports are.
	// Istio's injector passes the proxy's own ports (15090, 15021, 15020)
	// as exclusions; here proxyports.Reserved() is always excluded.
	if c.InboundPorts.All || len(c.InboundPorts.List) > 0 {
		add("PREROUTING", "-p", "tcp", "-j", ChainInbound)
		if c.InboundPorts.All {
			for _, p := range c.excludedInbound() {
				add(ChainInbound, "-p", "tcp", "--dport", strconv.Itoa(p), "-j", "RETURN")
			}
			add(ChainInbound, "-p", "tcp", "-j", ChainInRedirect)
		} else {
			for _, p := range sortedPorts(c.InboundPorts.List) {
				add(ChainInbound, "-p", "tcp", "--dport", strconv.Itoa(p), "-j", ChainInRedirect)
			}
		}
	}

	// run.go Run: "Jump to the ISTIOOUTPUT chain from OUTPUT chain for all
	// traffic", then "Apply port based exclusions. Must be applied before
	// connections back to self are redirected" (TCP and UDP).
	add("OUTPUT", "-j", ChainOutput)
	for _, p := range sortedPorts(c.ExcludeOutboundPorts) {
		add(ChainOutput, "-p", "tcp", "--dport", strconv.Itoa(p), "-j", "RETURN")
		add(ChainOutput, "-p", "udp", "--dport", strconv.Itoa(p), "-j", "RETURN")
	}

	// run.go Run: "127.0.0.6/::6 is bind connect from inbound passthrough
	// cluster": the proxy's inbound side connects to the application from
	// this source over lo; never capture it.
	add(ChainOutput, "-o", "lo", "-s", a.passthrough, "-j", "RETURN")

	// run.go Run, the loop over ProxyUID and then ProxyGID:
	//  - "Redirect app calls back to itself via Envoy when using the service
	//    VIP e.g. appN => Envoy (client) => Envoy (server) => appN": the
	//    proxy's outbound connection to its own pod's address leaves over
	//    lo and is sent to the inbound listener;
	//  - "Do not redirect app calls to back itself via Envoy when using the
	//    endpoint address e.g. appN => appN by lo" (dropped when loopback is
	//    explicitly included, as Istio's HasLoopBackIP);
	//  - "Avoid infinite loops. Don't redirect Envoy traffic directly back
	//    to Envoy for non-loopback traffic" (any protocol).
	includesLoopback := includesLoopback(c.IncludeOutboundCIDRs)
	for _, owner := range []struct{ flag, id string }{{"--uid-owner", uid}, {"--gid-owner", gid}} {
		add(ChainOutput, "-o", "lo", "!", "-d", a.loopback, "-p", "tcp", "-m", "owner", owner.flag, owner.id, "-j", ChainInRedirect)
		if !includesLoopback {
			add(ChainOutput, "-o", "lo", "-m", "owner", "!", owner.flag, owner.id, "-j", "RETURN")
		}
		add(ChainOutput, "-m", "owner", owner.flag, owner.id, "-j", "RETURN")
	}

	// run.go Run: "Skip redirection for Envoy-aware applications and
	// container-to-container traffic both of which explicitly use
	// localhost", then "Apply outbound IPv4 exclusions. Must be applied
	// before inclusions."
	add(ChainOutput, "-d", a.loopback, "-j", "RETURN")
	for _, p := range familyPrefixes(c.ExcludeOutboundCIDRs, f) {
		add(ChainOutput, "-d", p.String(), "-j", "RETURN")
	}

	// run.go handleOutboundIncludeRules: "Wildcard specified. Redirect all
	// remaining outbound traffic to Envoy", or only the listed CIDRs.
	if c.IncludeOutboundCIDRs.All {
		add(ChainOutput, "-j", ChainRedirect)
	} else {
		for _, p := range familyPrefixes(c.IncludeOutboundCIDRs.List, f) {
			add(ChainOutput, "-d", p.String(), "-j", ChainRedirect)
		}
	}
	return t
}

// includesLoopback is Istio's HasLoopBackIP (tools/common/config): an
// included CIDR that contains a loopback address.
func includesLoopback(c CIDRs) bool {
	for _, p := range c.List {
		if p.Contains(netip.MustParseAddr("127.0.0.1")) || p.Contains(netip.IPv6Loopback()) {
			return true
		}
	}
	return false
}

// familyPrefixes keeps the prefixes of family f, in the order given (as
// Istio's SeparateV4V6).
func familyPrefixes(ps []netip.Prefix, f Family) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() == (f == IPv4) {
			out = append(out, p)
		}
	}
	return out
}

// sortedPorts sorts and deduplicates, so the rules do not depend on the
// order of a flag's list.
func sortedPorts(ps []int) []int {
	out := slices.Clone(ps)
	slices.Sort(out)
	return slices.Compact(out)
}
