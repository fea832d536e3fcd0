package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The grammar of the capture settings as people write them: in
// `gitmesh capture` flags and in the pod annotations the injector turns
// into those flags. One owner, so a value the injector accepts is one the
// command accepts.

// ListItems splits a comma-separated list, ignoring spaces and empty items
// ("" is the empty list).
func ListItems(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// ParsePort parses one TCP port.
func ParsePort(item string) (int, error) {
	n, err := strconv.Atoi(item)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q: must be a number between 1 and 65535", item)
	}
	return n, nil
}

// ParseCIDR parses one CIDR, refusing host bits (10.0.0.1/8 is almost
// always a typo for an address or for 10.0.0.0/8).
func ParseCIDR(item string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(item)
	if err != nil {
		return p, fmt.Errorf("CIDR %q: want an address/prefix-length such as 10.96.0.0/12", item)
	}
	if p != p.Masked() {
		return p, fmt.Errorf("CIDR %q: has host bits set (want %q)", item, p.Masked().String())
	}
	return p, nil
}
