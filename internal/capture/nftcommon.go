package capture

import (
	"fmt"
	"strings"
)

// NFTTable is the name of the nftables table the nftables backend owns in
// each family (`table ip gitmesh`, `table ip6 gitmesh`). Owning a whole
// table is what makes nftables simpler than iptables here: apply deletes
// and recreates it, cleanup deletes it, and nothing else is touched.
const NFTTable = "gitmesh"

// NFTCleanupText is what the nftables backend's cleanup does, in nft(8)
// syntax.
func NFTCleanupText(ipv6 bool) string {
	var b strings.Builder
	b.WriteString("# nft -f -\n")
	for _, f := range families(ipv6) {
		fam := nftFamilyName(f)
		fmt.Fprintf(&b, "table %s %s\ndelete table %s %s\n", fam, NFTTable, fam, NFTTable)
	}
	return b.String()
}

func families(ipv6 bool) []Family {
	if ipv6 {
		return []Family{IPv4, IPv6}
	}
	return []Family{IPv4}
}

// nftFamilyName is f as nft(8) names the family: ip or ip6.
func nftFamilyName(f Family) string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}
