package envoystrict

import (
	"reflect"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestMemoSameVerdict checks the same resources (the same pointers, as an
// incremental render hands them over) in a chain of checks through Memos
// and compares each verdict with a check without one: what is not about
// the resource alone (its secrets against what is served now, references
// within the class) is judged afresh, and a resource whose walk found
// something is walked, and reported, again.
func TestMemoSameVerdict(t *testing.T) {
	c := edsCluster("c")
	c.TransportSocket = &corev3.TransportSocket{Name: "tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t,
		&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "gw-cert"}}}})}}
	good := set(with(t, c)...)
	bad := routeConfig("r", "c", []string{"a"})
	bad.VirtualHosts[0].Routes[0].GetRoute().ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{
		Clusters: []*routev3.WeightedCluster_ClusterWeight{{Name: "c", Weight: wrapperspb.UInt32(0)}}}}
	broken := set(with(t, c, bad)...)
	dangling := set(msgs(httpListener(t, "l", "0.0.0.0", 80, "r"), bad, c)...)
	// A new route config around the same (broken) virtual hosts, as an
	// incremental render makes one.
	rebuilt := set(with(t, c, &routev3.RouteConfiguration{Name: "r", VirtualHosts: bad.VirtualHosts})...)

	all := Options{SecretServed: func(string) bool { return true }}
	none := Options{SecretServed: func(n string) bool { return n == "default" }}
	var memo *Memo
	for i, step := range []struct {
		s   *Set
		opt Options
	}{{good, all}, {good, none}, {good, all}, {broken, all}, {broken, all}, {rebuilt, all}, {dangling, none}, {good, none}} {
		cl := Class{Name: "sidecar/ns/svc/v1", Own: step.s}
		want := Check(cl, step.opt)
		memo = NewMemo(memo)
		opt := step.opt
		opt.Memo = memo
		got := Check(cl, opt)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("step %d: with a memo %v\nwithout %v", i, got, want)
		}
		if i == 1 && len(want) == 0 {
			t.Fatal("step 1 should report the unserved secret: the test checks nothing")
		}
		if (i == 4 || i == 5) && len(want) == 0 {
			t.Fatalf("step %d should report the weights: the test checks nothing", i)
		}
	}
	// The memo remembers clean walks only.
	for r := range memo.next {
		if r.Message == bad {
			t.Error("a resource whose walk found something is remembered")
		}
	}
	if len(memo.next) == 0 {
		t.Error("the memo remembers nothing")
	}
}
