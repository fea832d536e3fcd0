package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/internal/proxyports"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// TestRulesGolden pins the generated rules per configuration in
// testdata/NAME.golden (go test ./internal/capture -update rewrites them).
func TestRulesGolden(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
	}{
		{"default", func(*Config) {}},
		{"excludes", func(c *Config) {
			c.ExcludeInboundPorts = []int{9090, 8080, proxyports.Health} // reserved anyway: listed once
			c.ExcludeOutboundPorts = []int{9443, 5432, 9443}
			c.ExcludeOutboundCIDRs = prefixes("169.254.169.254/32", "10.10.0.0/16")
		}},
		{"inbound-ports-include", func(c *Config) {
			c.InboundPorts = Ports{List: []int{9080, 8080}}
			c.ExcludeInboundPorts = []int{9090} // ignored with a list, as Istio
		}},
		{"no-inbound", func(c *Config) { c.InboundPorts = Ports{} }},
		{"outbound-cidrs-include", func(c *Config) {
			c.IncludeOutboundCIDRs = CIDRs{List: prefixes("10.96.0.0/12", "172.16.0.0/12")}
		}},
		{"loopback-include", func(c *Config) {
			c.IncludeOutboundCIDRs = CIDRs{List: prefixes("127.0.0.0/8", "10.0.0.0/8")}
		}},
		{"ipv6", func(c *Config) {
			c.IPv6 = true
			c.ExcludeOutboundCIDRs = prefixes("10.10.0.0/16", "fd00:10::/64")
			c.IncludeOutboundCIDRs = CIDRs{List: prefixes("10.96.0.0/12", "fd00:96::/108")}
		}},
		{"other-ids-and-ports", func(c *Config) {
			c.ProxyUID, c.ProxyGID = 2000, 3000
			c.OutboundPort, c.InboundPort = 16001, 16006
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			rs, err := Rules(c)
			if err != nil {
				t.Fatal(err)
			}
			got := rs.Text()
			again, _ := Rules(c)
			if again.Text() != got {
				t.Fatal("two builds of the same config differ")
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), []byte(got))
			// The nftables backend's dry-run: the same rules in nft syntax
			// (the backend, and google/nftables, are Linux's).
			if runtime.GOOS != "linux" {
				return
			}
			nft, err := rs.NFTText()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".nft.golden"), []byte(nft))
		})
	}
}

// TestRulesShape checks the properties the netns test proves for real,
// so a broken rule fails here too on machines that cannot run that test.
func TestRulesShape(t *testing.T) {
	rs, err := Rules(Default())
	if err != nil {
		t.Fatal(err)
	}
	text := rs.V4.Restore()
	uidReturn := fmt.Sprintf("-A ISTIO_OUTPUT -m owner --uid-owner %d -j RETURN\n", proxyports.ProxyUID)
	for _, want := range []string{
		fmt.Sprintf("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports %d\n", proxyports.Outbound),
		fmt.Sprintf("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports %d\n", proxyports.Inbound),
		fmt.Sprintf("-A ISTIO_INBOUND -p tcp --dport %d -j RETURN\n", proxyports.AgentStatus),
		fmt.Sprintf("-A ISTIO_INBOUND -p tcp --dport %d -j RETURN\n", proxyports.Health),
		fmt.Sprintf("-A ISTIO_INBOUND -p tcp --dport %d -j RETURN\n", proxyports.Stats),
		uidReturn,
		"-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n",
		"-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rules lack %q:\n%s", want, text)
		}
	}
	// The proxy's RETURN must come before the catch-all redirect.
	if strings.Index(text, uidReturn) > strings.Index(text, "-A ISTIO_OUTPUT -j ISTIO_REDIRECT") {
		t.Errorf("the proxy uid's RETURN comes after the redirect:\n%s", text)
	}
	if rs.V6 != nil {
		t.Error("IPv6 rules built with IPv6 off")
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"port zero", func(c *Config) { c.OutboundPort = 0 }, "outbound port: must be between 1 and 65535 (got 0)"},
		{"port too big", func(c *Config) { c.ExcludeOutboundPorts = []int{70000} }, "excluded outbound ports[0]: must be between 1 and 65535 (got 70000)"},
		{"same ports", func(c *Config) { c.InboundPort = c.OutboundPort }, fmt.Sprintf("outbound port and inbound port: must differ (both %d)", proxyports.Outbound)},
		{"uid", func(c *Config) { c.ProxyUID = -1 }, "proxy uid: must be between 0 and 4294967294 (got -1)"},
		{"reserved inbound", func(c *Config) { c.InboundPorts = Ports{List: []int{9080, proxyports.Health}} }, fmt.Sprintf("inbound ports[1]: %d is reserved for the proxy and never captured", proxyports.Health)},
		{"exclude all", func(c *Config) { c.ExcludeOutboundCIDRs = prefixes("0.0.0.0/0") }, `excluded outbound CIDRs[0]: "0.0.0.0/0" excludes every address; capture nothing by not running capture`},
		{"host bits", func(c *Config) { c.ExcludeOutboundCIDRs = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")} }, `excluded outbound CIDRs[0]: "10.1.2.3/16" has host bits set (want "10.1.0.0/16")`},
		{"v6 without ipv6", func(c *Config) { c.IncludeOutboundCIDRs = CIDRs{List: prefixes("fd00::/8")} }, `included outbound CIDRs[0]: "fd00::/8" is IPv6 but IPv6 capture is off`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			_, err := Rules(c)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// saved is iptables-save output of a nat table our rules were applied to,
// with a foreign rule and a stale jump from an older rule set.
const saved = `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
-A INPUT -j ISTIO_OUTPUT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_OUTPUT - [0:0]
:KUBE-THING - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p udp -j KUBE-THING
-A OUTPUT -j ISTIO_OUTPUT
-A OUTPUT -p tcp -m tcp --dport 80 -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
COMMIT
`

func TestApplyScriptIdempotent(t *testing.T) {
	rs, err := Rules(Default())
	if err != nil {
		t.Fatal(err)
	}
	got := ApplyScript(rs.V4, saved)
	wantDeletes := "-D PREROUTING -p tcp -j ISTIO_INBOUND\n-D OUTPUT -j ISTIO_OUTPUT\n-D OUTPUT -p tcp -m tcp --dport 80 -j ISTIO_OUTPUT\n"
	if !strings.Contains(got, ":ISTIO_OUTPUT - [0:0]\n"+wantDeletes+"-A ISTIO_REDIRECT") {
		t.Errorf("apply script does not delete the old jumps right after the declarations:\n%s", got)
	}
	if strings.Contains(got, "KUBE-THING") || strings.Contains(got, "-D INPUT") {
		t.Errorf("apply script touches rules that are not ours:\n%s", got)
	}
	if fresh := ApplyScript(rs.V4, ""); fresh != rs.V4.Restore() {
		t.Errorf("on an empty table the apply script is not the plain rules:\n%s", fresh)
	}

	clean := CleanupScript(rs.V4, saved)
	if !strings.HasSuffix(clean, wantDeletes+"-X ISTIO_INBOUND\n-X ISTIO_REDIRECT\n-X ISTIO_IN_REDIRECT\n-X ISTIO_OUTPUT\nCOMMIT\n") {
		t.Errorf("cleanup script:\n%s", clean)
	}
	if !HasChains(saved, "nat") || HasChains("*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j KUBE-THING\nCOMMIT\n", "nat") {
		t.Error("HasChains does not tell our chains from others")
	}
}

func TestRestoreError(t *testing.T) {
	script := "*nat\n:ISTIO_OUTPUT - [0:0]\n-A ISTIO_OUTPUT -j RETURNX\nCOMMIT\n"
	stderr := "iptables-restore v1.8.9 (nf_tables): Chain 'RETURNX' does not exist\nError occurred at line: 3\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n"
	cause := errors.New("exit status 2")
	err := restoreError("iptables-restore", script, stderr, cause)
	want := `iptables-restore --noflush: line 3 "-A ISTIO_OUTPUT -j RETURNX": iptables-restore v1.8.9 (nf_tables): Chain 'RETURNX' does not exist: exit status 2`
	if err.Error() != want || !errors.Is(err, cause) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// iptables-nft blames COMMIT for a jump to a missing chain.
	stderr = strings.Replace(stderr, "line: 3", "line: 4", 1)
	if err := restoreError("iptables-restore", script, stderr, cause); err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
