package envoystrict

import (
	"strconv"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestRuleOriginalDst(t *testing.T) {
	virtualOutbound := func() *listenerv3.Listener {
		l := tcpListener(t, "virtualOutbound", "0.0.0.0", 15001, "c")
		l.UseOriginalDst = wrapperspb.Bool(true)
		return l
	}
	notBound := func(l *listenerv3.Listener) *listenerv3.Listener {
		l.BindToPort = wrapperspb.Bool(false)
		return l
	}
	virtualInbound := func(ports ...uint32) *listenerv3.Listener {
		l := &listenerv3.Listener{Name: "virtualInbound", Address: addr("0.0.0.0", 15006)}
		for _, p := range ports {
			l.FilterChains = append(l.FilterChains, &listenerv3.FilterChain{
				Name:             "inbound|" + strconv.FormatUint(uint64(p), 10),
				FilterChainMatch: &listenerv3.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p)},
				Filters:          []*listenerv3.Filter{tcpFilter(t, "c")},
			})
		}
		return l
	}
	// The capture shape: virtualOutbound, per-destination listeners that
	// do not bind (0.0.0.0_80 for HTTP, a VIP for TCP), virtualInbound.
	captured := func(extra ...proto.Message) []proto.Message {
		return append(msgs(
			virtualOutbound(), virtualInbound(9080),
			notBound(httpListener(t, "0.0.0.0_80", "0.0.0.0", 80, "r")),
			notBound(tcpListener(t, "10.0.0.7_5432", "10.0.0.7", 5432, "c")),
			routeConfig("r", "c", []string{"a"}), edsCluster("c"), assignment("c"),
		), extra...)
	}
	capture := &Capture{
		Outbound:        []Destination{{Port: 80, Path: "services.a.dependsOn"}, {Address: "10.0.0.7", Port: 5432}},
		InboundListener: "virtualInbound",
		InboundPorts:    []Port{{Port: 9080, Path: "services.a.ports[0]"}},
	}
	runCases(t, []ruleCase{
		{name: "the capture shape", own: captured(), capture: capture},
		{name: "a listener that does not bind, with no capture listener", code: CodeCapture, want: "does not bind its port",
			own: with(t, notBound(tcpListener(t, "m", "0.0.0.0", 81, "c")))},
		{name: "a captured port without a listener", code: CodeCapture, want: "captured destination 0.0.0.0:9090 has no listener",
			own: captured(), capture: &Capture{Outbound: []Destination{{Port: 9090}}, InboundListener: "virtualInbound"}},
		{name: "a VIP resolves by the any-address", own: captured(),
			capture: &Capture{Outbound: []Destination{{Address: "10.0.0.9", Port: 80}}, InboundListener: "virtualInbound"}},
		{name: "a VIP without its listener and no any-address", code: CodeCapture, want: "10.0.0.9:5432",
			own: captured(), capture: &Capture{Outbound: []Destination{{Address: "10.0.0.9", Port: 5432}}, InboundListener: "virtualInbound"}},
		{name: "inbound port without a chain", code: CodeCapture, want: "no filter chain for destination port 9443",
			own: captured(), capture: &Capture{InboundListener: "virtualInbound", InboundPorts: []Port{{Port: 9443}}}},
		{name: "capture without the inbound listener", code: CodeCapture, want: `no inbound listener "vi"`,
			own: captured(), capture: &Capture{InboundListener: "vi", InboundPorts: []Port{{Port: 9080}}}},
		{name: "no capture listeners: nothing to hold (today's shape)", own: valid(t), capture: capture},
	})
}
