package envoystrict

import (
	"sort"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRuleBoundAddress(t *testing.T) {
	unbound := func(l *listenerv3.Listener) *listenerv3.Listener {
		l.BindToPort = wrapperspb.Bool(false)
		return l
	}
	udp := func(l *listenerv3.Listener) *listenerv3.Listener {
		l.Address.GetSocketAddress().Protocol = corev3.SocketAddress_UDP
		return l
	}
	origDst := func(l *listenerv3.Listener) *listenerv3.Listener {
		l.UseOriginalDst = wrapperspb.Bool(true)
		return l
	}
	runCases(t, []ruleCase{
		{name: "two bound on one address", code: CodeDuplicateAddress, want: `listeners "inbound|80" and "l" are both on 0.0.0.0:80`,
			own: with(t, tcpListener(t, "inbound|80", "0.0.0.0", 80, "c"))},
		{name: "today's sidecar: outbound and inbound on the service port", code: CodeDuplicateAddress, want: "0.0.0.0:9080",
			own: msgs(httpListener(t, "0.0.0.0_9080", "0.0.0.0", 9080, "r"), tcpListener(t, "inbound|9080", "0.0.0.0", 9080, "c"),
				routeConfig("r", "c", []string{"a"}), edsCluster("c"), assignment("c"))},
		{name: "one in the shared layer, one own", code: CodeDuplicateAddress, want: "0.0.0.0:80",
			shared: valid(t), own: msgs(tcpListener(t, "inbound|80", "0.0.0.0", 80, "c"))},
		{name: "non-bound listeners clash too (Envoy compares them)", code: CodeDuplicateAddress, want: "0.0.0.0:80",
			own: with(t, unbound(tcpListener(t, "m", "0.0.0.0", 80, "c")), origDst(tcpListener(t, "virtualOutbound", "0.0.0.0", 15001, "c")))},
		{name: "equal IPv6 addresses in different spellings", code: CodeDuplicateAddress, want: "[::1]:80",
			own: with(t, tcpListener(t, "a6", "::1", 80, "c"), tcpListener(t, "b6", "0:0:0:0:0:0:0:1", 80, "c"))},
		{name: "additional address clashes", code: CodeDuplicateAddress, want: "10.0.0.1:90",
			own: with(t, tcpListener(t, "x", "10.0.0.1", 90, "c"), func() *listenerv3.Listener {
				l := tcpListener(t, "y", "10.0.0.2", 90, "c")
				l.AdditionalAddresses = []*listenerv3.AdditionalAddress{{Address: addr("10.0.0.1", 90)}}
				return l
			}())},
		{name: "same port, other addresses", own: with(t, tcpListener(t, "vip", "10.0.0.1", 80, "c"))},
		{name: "same address, TCP and UDP", own: with(t, udp(tcpListener(t, "u", "0.0.0.0", 80, "c")))},
		{name: "port 0 twice, both bound", own: with(t, tcpListener(t, "e1", "127.0.0.1", 0, "c"), tcpListener(t, "e2", "127.0.0.1", 0, "c"))},
		{name: "port 0 twice, the first not bound", code: CodeDuplicateAddress, want: "127.0.0.1:0",
			own: with(t, unbound(tcpListener(t, "e1", "127.0.0.1", 0, "c")), tcpListener(t, "e2", "127.0.0.1", 0, "c"),
				origDst(tcpListener(t, "virtualOutbound", "0.0.0.0", 15001, "c")))},
	})
}

// TestRuleBoundAddressSharedSet checks classes sharing one set through one
// Checker: the set's own clash is reported once (naming the first class),
// and each class's own listeners are merged with the set's by name, an
// own listener that sorts first making the shared one the refused one.
func TestRuleBoundAddressSharedSet(t *testing.T) {
	shared := set(append(valid(t),
		tcpListener(t, "m", "0.0.0.0", 80, "c"),
		tcpListener(t, "x", "10.0.0.1", 90, "c"))...)
	c := New(Options{})
	for _, cl := range []Class{
		{Name: "A", Shared: shared, Own: set(tcpListener(t, "a", "10.0.0.1", 90, "c"))},
		{Name: "B", Shared: shared, Own: set(tcpListener(t, "z", "10.0.0.1", 90, "c"))},
		{Name: "C", Shared: shared, Own: set()},
	} {
		c.Check(cl)
	}
	var got []string
	for _, d := range c.Diagnostics() {
		if d.Code != CodeDuplicateAddress {
			t.Errorf("unexpected finding: %s %s", d.Code, d.Message)
			continue
		}
		got = append(got, d.Message)
	}
	sort.Strings(got)
	want := []string{
		`proxy "A": listeners "a" and "x" are both on 10.0.0.1:90`,
		`proxy "A": listeners "l" and "m" are both on 0.0.0.0:80`,
		`proxy "B": listeners "x" and "z" are both on 10.0.0.1:90`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("finding %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}
