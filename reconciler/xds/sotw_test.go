package xds

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func svcNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%03d", prefix, i)
	}
	return out
}

// TestSotwSubMatchesGoControlPlane feeds the same requests to
// go-control-plane's SotW subscription (the slow path: a new map per
// request) and to sotwSub, handed the names as a repeated slice, a shared
// nameSet, or a fresh list, and compares what the cache sees after each.
func TestSotwSubMatchesGoControlPlane(t *testing.T) {
	ab := []string{"a", "b"}
	steps := [][]string{
		nil,                     // legacy wildcard
		nil,                     // still wildcard
		ab,                      // names: no longer wildcard
		ab,                      // an ACK: the same slice
		{"a", "b"},              // the same names, another slice
		{"b", "a"},              // reordered
		{"a", "b", "c"},         // one more
		{"a", "c"},              // one less
		{"a", "*"},              // explicit wildcard
		{"a"},                   // wildcard dropped
		{},                      // nothing
		{},                      // still nothing: not wildcard again
		svcNames("svc", 40),     // large
		svcNames("svc", 40),     // large, repeated
		svcNames("svc", 41),     // large, one more
		svcNames("svc", 41)[1:], // large, one less
	}
	// The nameSets a codec would hand over: the same set for the same list.
	sets := map[string]*nameSet{}
	setOf := func(names []string) *nameSet {
		k := fmt.Sprint(names)
		if sets[k] == nil {
			sets[k] = newNameSet(slices.Clone(names))
		}
		return sets[k]
	}
	for _, mode := range []string{"slice", "set", "fresh"} {
		t.Run(mode, func(t *testing.T) {
			ref := stream.NewSotwSubscription(steps[0], true)
			var sub *sotwSub
			for i, names := range steps {
				var set *nameSet
				switch mode {
				case "set":
					if len(names) > 0 {
						set = setOf(names)
						names = set.names
					}
				case "fresh":
					names = slices.Clone(names)
				}
				// Whatever a response recorded: names subscribed or not,
				// and our markers.
				returned := map[string]string{"a": "1", "c": "2", "svc000": "3", "x": "4", wildcardKey: "5"}
				if i == 0 {
					sub = newSotwSub(names, set)
				} else {
					ref.SetReturnedResources(maps.Clone(returned))
					sub.returned = maps.Clone(returned)
					ref.SetResourceSubscription(names)
					sub.update(names, set)
				}
				if got, want := sub.IsWildcard(), ref.IsWildcard(); got != want {
					t.Fatalf("step %d %q: wildcard %v, want %v", i, names, got, want)
				}
				if got, want := sub.SubscribedResources(), ref.SubscribedResources(); !maps.Equal(got, want) {
					t.Fatalf("step %d %q: subscribed %v, want %v", i, names, got, want)
				}
				if got, want := sub.ReturnedResources(), ref.ReturnedResources(); !maps.Equal(got, want) {
					t.Fatalf("step %d %q: returned %v, want %v", i, names, got, want)
				}
				if got, want := namesHash(sub), nameSetHash(ref.SubscribedResources()); got != want {
					t.Fatalf("step %d %q: names hash %x, want %x", i, names, got, want)
				}
			}
		})
	}
}

// TestUnmarshalSotwSharesNameSets: a SotW request decodes to what proto
// decodes it to; a name list sent again (by this stream or another) comes
// back as the same nameSet, and one that changes order or content does not.
func TestUnmarshalSotwSharesNameSets(t *testing.T) {
	names := svcNames("svc", 40)
	table := map[string]string{}
	for _, n := range names {
		table[n] = n
	}
	c := newSharedCodec(1 << 20)
	c.names = func() map[string]string { return table }
	decode := func(b []byte) *sotwRecv {
		t.Helper()
		r := &sotwRecv{req: &discovery.DiscoveryRequest{}}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r); err != nil {
			t.Fatal(err)
		}
		want := &discovery.DiscoveryRequest{}
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(r.req, want) {
			t.Fatalf("decoded %v, want %v", r.req, want)
		}
		if r.set != nil && !slices.Equal(r.set.names, want.ResourceNames) {
			t.Fatalf("name set %q, want %q", r.set.names, want.ResourceNames)
		}
		return r
	}
	encode := func(m *discovery.DiscoveryRequest) []byte {
		t.Helper()
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := decode(encode(&discovery.DiscoveryRequest{Node: &core.Node{Id: "n1"}, TypeUrl: resource.EndpointType, ResourceNames: names}))
	if first.set == nil {
		t.Fatal("a large list got no name set")
	}
	ack := decode(encode(&discovery.DiscoveryRequest{VersionInfo: "v1", TypeUrl: resource.EndpointType, ResourceNames: slices.Clone(names), ResponseNonce: "1"}))
	if ack.set != first.set || &ack.req.ResourceNames[0] != &first.req.ResourceNames[0] {
		t.Fatal("an ACK repeating the names did not get the same name set")
	}
	other := decode(encode(&discovery.DiscoveryRequest{Node: &core.Node{Id: "n2"}, TypeUrl: resource.RouteType, ResourceNames: slices.Clone(names)}))
	if other.set != first.set {
		t.Fatal("another stream's identical list did not get the same name set")
	}
	reordered := slices.Clone(names)
	reordered[0], reordered[1] = reordered[1], reordered[0]
	changed := slices.Clone(names)
	changed[7] = "svc999"
	for what, list := range map[string][]string{"reordered": reordered, "changed": changed, "shorter": names[1:], "longer": append(slices.Clone(names), "svc040")} {
		r := decode(encode(&discovery.DiscoveryRequest{VersionInfo: "v1", TypeUrl: resource.EndpointType, ResourceNames: list, ResponseNonce: "2"}))
		if r.set == first.set {
			t.Fatalf("%s list got the old name set", what)
		}
	}
	// A list with a name the server does not serve is decoded, but not
	// kept for other requests.
	unknown := append(slices.Clone(names), "unknown")
	if a, b := decode(encode(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: unknown})),
		decode(encode(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: unknown})); a.set == nil || a.set == b.set {
		t.Fatal("a list with a name not served was cached")
	}
	// Names interleaved with other fields (no encoder we know does it) take
	// the plain path and still decode right.
	var b []byte
	for i, n := range names {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, n)
		if i == 20 {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			b = protowire.AppendString(b, resource.EndpointType)
		}
	}
	if r := decode(b); r.set != nil {
		t.Fatal("interleaved names got a name set")
	}
	// A small list is decoded plainly.
	if r := decode(encode(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: names[:3]})); r.set != nil {
		t.Fatal("a small list got a name set")
	}
}

// TestNameSetCoversAsEachSubscribedDoes: sotwNamed answers a sotwSub whose
// names cover the view (known from the set's memo) with what a
// go-control-plane subscription, walked by eachSubscribed, gets.
func TestNameSetCoversAsEachSubscribedDoes(t *testing.T) {
	all := svcNames("svc", 100)
	mk := func(names []string) *typeIndex {
		idx, _ := buildIndex(resource.EndpointType, nil, clusters(t, names, "v")[resource.EndpointType], newWrapperPool())
		return idx
	}
	base := mk(all[:90])
	own := mk(all[90:])
	v := newView(base, own)
	grown := newView(mk(append(slices.Clone(all[:90]), "svc999")), own)
	for what, names := range map[string][]string{
		"all":          all,
		"more":         append(slices.Clone(all), "zzz"),
		"one missing":  all[1:],
		"own missing":  all[:95],
		"half":         all[:50],
		"all with '*'": append(slices.Clone(all), "*"),
	} {
		t.Run(what, func(t *testing.T) {
			set := newNameSet(names)
			for _, view := range []*view{v, v, grown, v} { // again: from the memo
				req := &discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: names}
				ref := stream.NewSotwSubscription(names, true)
				want := sotwNamed(view, req, &ref, true, "r")
				got := sotwNamed(view, req, newSotwSub(names, set), true, "r")
				if got.out.GetVersionInfo() != want.out.GetVersionInfo() ||
					!slices.Equal(got.out.GetResources(), want.out.GetResources()) {
					t.Fatalf("response of %d resources, want %d", len(got.out.GetResources()), len(want.out.GetResources()))
				}
				// The sync entry sits under any one subscribed name.
				if g, w := slices.Sorted(maps.Values(got.returned)), slices.Sorted(maps.Values(want.returned)); !slices.Equal(g, w) {
					t.Fatalf("returned %v, want %v", got.returned, want.returned)
				}
				covers := len(want.out.GetResources()) == view.len()
				if set.covers(view) != covers {
					t.Fatalf("covers %v, want %v", !covers, covers)
				}
			}
		})
	}
}

// TestSotwLargeNameListsOverTheWire runs the SotW stream loop with lists
// large enough for shared name sets: a repeated or reordered list is in
// sync, a changed one is answered, a request with a stale nonce is
// ignored, and a second stream sending the same bytes gets the same full
// answer.
func TestSotwLargeNameListsOverTheWire(t *testing.T) {
	s := newTestServer(t)
	all := svcNames("c", 40)
	cfg := clusters(t, all, "r1")
	apply(t, s, "r1", cfg)
	client := dial(t, startServer(t, s))
	open := func() (discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, *pump[*discovery.DiscoveryResponse]) {
		t.Helper()
		st, err := client.StreamAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return st, startPump(st.Recv)
	}
	st, p := open()
	if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.EndpointType, ResourceNames: all}); err != nil {
		t.Fatal(err)
	}
	eds := p.next(t, wait)
	if got := anyNames(t, eds.GetResources()); !slices.Equal(got, all) {
		t.Fatalf("EDS = %v, want all %d", got, len(all))
	}
	// A stale nonce: ignored, although its names differ.
	st.Send(&discovery.DiscoveryRequest{TypeUrl: resource.EndpointType, ResourceNames: all[1:], ResponseNonce: "stale"})
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to a request with a stale nonce, want 0", n)
	}
	st.Send(ack(eds, all...))
	reordered := slices.Clone(all)
	slices.Reverse(reordered)
	st.Send(ack(eds, reordered...))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to ACKs of the same names, want 0", n)
	}
	// One name less, one unknown name more: answered with what it names.
	changed := append(slices.Clone(all[1:]), "unknown")
	st.Send(ack(eds, changed...))
	eds2 := p.next(t, wait)
	if got := anyNames(t, eds2.GetResources()); !slices.Equal(got, all[1:]) {
		t.Fatalf("EDS after a change of names = %v, want %v", got, all[1:])
	}
	st.Send(ack(eds2, changed...))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to the ACK, want 0", n)
	}
	// A change of one subscribed resource sends just it.
	cfg = with(cfg, resource.EndpointType, res(t, "c005", &endpoint.ClusterLoadAssignment{ClusterName: "c005", Endpoints: []*endpoint.LocalityLbEndpoints{{}}}))
	apply(t, s, "r2", cfg)
	eds3 := p.next(t, wait)
	if got := anyNames(t, eds3.GetResources()); !slices.Equal(got, []string{"c005"}) {
		t.Fatalf("EDS after an edit = %v, want c005", got)
	}
	st.Send(ack(eds3, changed...))
	if n := p.count(quiet); n != 0 {
		t.Fatalf("%d responses to the ACK, want 0", n)
	}
	// Another stream, the same bytes: the whole of it.
	st2, p2 := open()
	st2.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA + "b"}, TypeUrl: resource.EndpointType, ResourceNames: changed})
	other := p2.next(t, wait)
	if got := anyNames(t, other.GetResources()); !slices.Equal(got, all[1:]) || other.GetVersionInfo() != eds3.GetVersionInfo() {
		t.Fatalf("second stream got %v version %q, want %v version %q", got, other.GetVersionInfo(), all[1:], eds3.GetVersionInfo())
	}
}
