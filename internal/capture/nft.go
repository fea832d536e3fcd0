//go:build linux

package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The base chains of our table: nftables has no built-in chains, so the
// table declares its own, hooked where iptables' nat PREROUTING and OUTPUT
// are, at the same priority (NF_IP_PRI_NAT_DST, -100: "dstnat" in nft(8),
// "STANDARD PRIORITY NAMES"), with policy accept.
const (
	nftPrerouting = "prerouting"
	nftOutput     = "output"
	nftPriority   = -100
)

// nftChainName maps the iptables chain a Rule names to ours: the built-in
// chains to our base chains, the ISTIO_* chains unchanged.
func nftChainName(chain string) string {
	switch chain {
	case "PREROUTING":
		return nftPrerouting
	case "OUTPUT":
		return nftOutput
	}
	return chain
}

// NFTRule is one rule of our nftables table: its chain, its statement in
// nft(8) syntax and the kernel expressions that statement compiles to.
type NFTRule struct {
	Chain string
	Text  string
	Exprs []expr.Any
}

// NFTRules translates t, rule by rule and in order, into nftables rules.
// The rule set stays the one Rules builds (so the two backends cannot
// drift apart); this only respells the small vocabulary build uses. Each
// match becomes what `nft` itself compiles it to (nft --debug=netlink):
//
//	-p tcp|udp           meta l4proto tcp      meta load l4proto; cmp eq
//	--dport N            tcp dport N           payload load 2b @ transport + 2; cmp eq
//	[!] -s|-d CIDR       ip saddr|daddr [!=] CIDR  payload load @ network + 12|16 (ip6: 8|24); bitwise; cmp
//	-o lo                oifname "lo"          meta load oifname; cmp eq (IFNAMSIZ, zero padded)
//	-m owner [!] --uid-owner N   meta skuid [!=] N   meta load skuid; cmp (host byte order)
//	-m owner [!] --gid-owner N   meta skgid [!=] N
//	-j RETURN            return
//	-j CHAIN             jump CHAIN
//	-j REDIRECT --to-ports N     redirect to :N   immediate reg 1 (port, big endian); redir proto_min reg 1
//
// The meta keys, payload offsets and verdicts are those of the kernel's
// nf_tables uapi (include/uapi/linux/netfilter/nf_tables.h) and the nft
// statements those of nft(8) ("META EXPRESSIONS", "PAYLOAD EXPRESSION",
// "REDIRECT STATEMENT", "VERDICT STATEMENT"; https://www.netfilter.org/projects/nftables/manpage.html),
// as iptables-translate(8) maps them and the nftables wiki's "Performing
// Network Address Translation (NAT)" and "Matching packet metainformation"
// pages describe (https://wiki.nftables.org).
//
// One difference from xt_owner: for a packet with no socket, iptables'
// `-m owner ! --uid-owner N` matches while nft's `meta skuid != N` does not
// (the meta expression ends the rule). The nat table sees only a
// connection's first packet, and locally sent first packets of TCP
// connections have a socket, so the captured traffic is normally the same.
func NFTRules(t Table) ([]NFTRule, error) {
	var out []NFTRule
	for _, r := range t.Rules {
		nr, err := nftRule(t.Family, r)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", r.String(), err)
		}
		out = append(out, nr)
	}
	return out, nil
}

func nftRule(f Family, r Rule) (NFTRule, error) {
	nr := NFTRule{Chain: nftChainName(r.Chain)}
	var words []string
	add := func(text string, e ...expr.Any) {
		words = append(words, text)
		nr.Exprs = append(nr.Exprs, e...)
	}
	args := r.Args
	neg, proto := false, ""
	next := func(i int) (string, error) {
		if i+1 >= len(args) {
			return "", fmt.Errorf("%s: missing value", args[i])
		}
		return args[i+1], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" {
			neg = true
			continue
		}
		op, opText := expr.CmpOpEq, ""
		if neg {
			op, opText = expr.CmpOpNeq, "!= "
		}
		switch a {
		case "-m":
			i++ // the owner module: its options follow
			continue
		case "-p":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			n, ok := map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}[v]
			if !ok || neg {
				return nr, fmt.Errorf("protocol %q: not supported by the nftables backend", v)
			}
			proto = v
			// `tcp dport N` carries this dependency itself in nft syntax.
			text := "meta l4proto " + v
			if i+1 < len(args) && args[i+1] == "--dport" {
				text = ""
			}
			words = append(words, text)
			nr.Exprs = append(nr.Exprs,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{n}})
		case "--dport":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil || proto == "" {
				return nr, fmt.Errorf("--dport %q: want a port after -p", v)
			}
			add(fmt.Sprintf("%s dport %s%d", proto, opText, p),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: op, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(p))})
		case "-s", "-d":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nr, err
			}
			text, e := nftAddr(f, a == "-s", p, op)
			add(text+" "+opText+p.String(), e...)
		case "-o":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			add(fmt.Sprintf("oifname %s%q", opText, v),
				&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
				&expr.Cmp{Op: op, Register: 1, Data: ifname(v)})
		case "--uid-owner", "--gid-owner":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			id, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nr, err
			}
			key, name := expr.MetaKeySKUID, "skuid"
			if a == "--gid-owner" {
				key, name = expr.MetaKeySKGID, "skgid"
			}
			add(fmt.Sprintf("meta %s %s%d", name, opText, id),
				&expr.Meta{Key: key, Register: 1},
				&expr.Cmp{Op: op, Register: 1, Data: binaryutil.NativeEndian.PutUint32(uint32(id))})
		case "-j":
			v, err := next(i)
			if err != nil {
				return nr, err
			}
			i++
			switch v {
			case "RETURN":
				add("return", &expr.Verdict{Kind: expr.VerdictReturn})
			case "REDIRECT":
				if i+2 >= len(args) || args[i+1] != "--to-ports" {
					return nr, fmt.Errorf("REDIRECT: want --to-ports")
				}
				p, err := strconv.ParseUint(args[i+2], 10, 16)
				if err != nil {
					return nr, err
				}
				i += 2
				add(fmt.Sprintf("redirect to :%d", p),
					&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(p))},
					&expr.Redir{RegisterProtoMin: 1})
			default:
				add("jump "+v, &expr.Verdict{Kind: expr.VerdictJump, Chain: v})
			}
		default:
			return nr, fmt.Errorf("%q: not supported by the nftables backend", a)
		}
		neg = false
	}
	var kept []string
	for _, w := range words {
		if w != "" {
			kept = append(kept, w)
		}
	}
	nr.Text = strings.Join(kept, " ")
	return nr, nil
}

// nftAddr matches the source or destination address against p: a load of
// the address from the network header, a mask when p is shorter than the
// address, and a compare with op.
func nftAddr(f Family, src bool, p netip.Prefix, op expr.CmpOp) (string, []expr.Any) {
	// IPv4 header: saddr at 12, daddr at 16 (RFC 791); IPv6: at 8 and 24
	// (RFC 8200).
	fam, off, size := "ip", uint32(16), 4
	if src {
		off = 12
	}
	if f == IPv6 {
		fam, off, size = "ip6", 24, 16
		if src {
			off = 8
		}
	}
	dir := "daddr"
	if src {
		dir = "saddr"
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: uint32(size)}}
	if p.Bits() < size*8 {
		mask := make([]byte, size)
		for b := 0; b < p.Bits(); b++ {
			mask[b/8] |= 0x80 >> (b % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(size), Mask: mask, Xor: make([]byte, size)})
	}
	e = append(e, &expr.Cmp{Op: op, Register: 1, Data: p.Addr().AsSlice()})
	return fam + " " + dir, e
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ bytes,
// zero padded.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// nftFamily is the nftables family of f.
func nftFamily(f Family) (nftables.TableFamily, string) {
	if f == IPv6 {
		return nftables.TableFamilyIPv6, "ip6"
	}
	return nftables.TableFamilyIPv4, "ip"
}

// NFTText is the nftables rule set of rs in nft(8) syntax, as `nft -f`
// reads it: for each family, the idiom that makes a load idempotent
// (declare the table, so the delete that follows always finds it; delete
// it; declare it again with its chains and rules: nft(8) "TABLES"), which
// is what the nftables backend sends the kernel in one batch.
func (rs RuleSet) NFTText() (string, error) {
	var b strings.Builder
	b.WriteString("# nft -f -\n")
	for _, t := range rs.Tables() {
		rules, err := NFTRules(t)
		if err != nil {
			return "", err
		}
		_, fam := nftFamily(t.Family)
		fmt.Fprintf(&b, "table %s %s\ndelete table %s %s\ntable %s %s {\n", fam, NFTTable, fam, NFTTable, fam, NFTTable)
		for _, c := range nftChains() {
			fmt.Fprintf(&b, "\tchain %s {\n", c.name)
			if c.hook != "" {
				fmt.Fprintf(&b, "\t\ttype nat hook %s priority %s; policy accept;\n", c.hook, c.priority)
			}
			for _, r := range rules {
				if r.Chain == c.name {
					fmt.Fprintf(&b, "\t\t%s\n", r.Text)
				}
			}
			b.WriteString("\t}\n")
		}
		b.WriteString("}\n")
	}
	return b.String(), nil
}

// nftChainDecl is one chain of our table; a base chain has a hook and its
// priority as nft(8) spells it (it knows "dstnat" for prerouting only).
type nftChainDecl struct{ name, hook, priority string }

// nftChains lists our table's chains: Istio's, then the two base chains.
func nftChains() []nftChainDecl {
	var out []nftChainDecl
	for _, c := range Chains() {
		out = append(out, nftChainDecl{name: c})
	}
	return append(out, nftChainDecl{nftPrerouting, "prerouting", "dstnat"}, nftChainDecl{nftOutput, "output", strconv.Itoa(nftPriority)})
}
