package xds

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestSharedCodecEncodesTheSameMessage checks that body+tail decodes to the
// message gRPC's own codec would have sent, on every sighting (the first is
// encoded normally, later ones share the cached body).
func TestSharedCodecEncodesTheSameMessage(t *testing.T) {
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	idx, _ := buildIndex(resource.ClusterType, nil, clusters(t, names, "r1")[resource.ClusterType], newWrapperPool())
	c := newSharedCodec(1 << 20)
	msgs := []proto.Message{}
	for i := range 3 {
		msgs = append(msgs,
			&discovery.DiscoveryResponse{VersionInfo: idx.version, Resources: idx.anys, TypeUrl: resource.ClusterType, Nonce: fmt.Sprint(i)},
			&discovery.DeltaDiscoveryResponse{SystemVersionInfo: "r1", Resources: idx.deltas, TypeUrl: resource.ClusterType,
				Nonce: fmt.Sprint(i), RemovedResources: []string{"gone"}},
			&discovery.DiscoveryResponse{VersionInfo: "small", Resources: idx.anys[:2], TypeUrl: resource.ClusterType, Nonce: "x"})
	}
	for i, m := range msgs {
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("message %d decodes to %v, want %v", i, got, m)
		}
	}
	if len(c.bodies) != 2 {
		t.Fatalf("%d cached bodies, want 2 (SotW and delta)", len(c.bodies))
	}
	// The budget evicts the oldest bodies.
	small := newSharedCodec(1)
	for range 2 {
		for _, r := range [][]*anypb.Any{idx.anys, idx.anys[1:]} {
			if _, err := small.Marshal(&discovery.DiscoveryResponse{Resources: r}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(small.bodies) != 1 || small.size > len(small.bodies[bodyKey{&idx.anys[1], len(idx.anys) - 1, "", ""}]) {
		t.Fatalf("budget not enforced: %d bodies, %d bytes", len(small.bodies), small.size)
	}
}

// TestSharedEncodingOnTheWire has several streams of one class receive the
// same 20-cluster list: the later ones get the shared body, and a plain
// protobuf client decodes each with its own nonce.
func TestSharedEncodingOnTheWire(t *testing.T) {
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf("c%02d", i))
	}
	s := newTestServer(t)
	apply(t, s, "r1", clusters(t, want, "r1"))
	c := dial(t, startServer(t, s))
	for i := range 4 {
		st, err := c.StreamAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: fmt.Sprintf("%s/a-%d", classA, i)}, TypeUrl: resource.ClusterType})
		r := startPump(st.Recv).next(t, wait)
		if got := anyNames(t, r.GetResources()); !slices.Equal(got, want) || r.GetNonce() == "" {
			t.Fatalf("stream %d got %v nonce %q", i, got, r.GetNonce())
		}
		dst, err := c.DeltaAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		dst.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: fmt.Sprintf("%s/d-%d", classA, i)}, TypeUrl: resource.ClusterType})
		d := startPump(dst.Recv).next(t, wait)
		if got := names(d.GetResources()); !slices.Equal(got, want) || d.GetNonce() == "" {
			t.Fatalf("delta stream %d got %v nonce %q", i, got, d.GetNonce())
		}
	}
}

// TestUnmarshalInternsNames checks that a large subscription decodes to
// the same request, its known names being the server's own strings.
func TestUnmarshalInternsNames(t *testing.T) {
	var names []string
	table := map[string]string{}
	for i := range 40 {
		n := fmt.Sprintf("svc%02d", i)
		names = append(names, n)
		if i%2 == 0 {
			table[n] = n
		}
	}
	c := newSharedCodec(1 << 20)
	c.names = func() map[string]string { return table }
	for _, m := range []proto.Message{
		&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: "a"}, TypeUrl: resource.EndpointType, ResourceNamesSubscribe: names,
			ResourceNamesUnsubscribe: []string{"x"}, ResponseNonce: "3"},
		&discovery.DiscoveryRequest{VersionInfo: "v", TypeUrl: resource.EndpointType, ResourceNames: names, ResponseNonce: "4"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, m) {
			t.Fatalf("decoded %v, want %v", got, m)
		}
		var list []string
		switch g := got.(type) {
		case *discovery.DeltaDiscoveryRequest:
			list = g.ResourceNamesSubscribe
		case *discovery.DiscoveryRequest:
			list = g.ResourceNames
		}
		if unsafe.StringData(list[0]) != unsafe.StringData(table["svc00"]) {
			t.Fatalf("%T: name not interned", m)
		}
	}
}

// TestSharedCodecSotwBigResource: a SotW response's big resource (a
// changed unscoped route configuration) is encoded once and shared by every
// stream; the response decodes to the same resources (in another order,
// which SotW allows).
func TestSharedCodecSotwBigResource(t *testing.T) {
	big := &anypb.Any{TypeUrl: resource.RouteType, Value: make([]byte, bigResource)}
	small := &anypb.Any{TypeUrl: resource.RouteType, Value: []byte("small")}
	c := newSharedCodec(1 << 20)
	var first []byte
	for i := range 3 {
		m := &discovery.DiscoveryResponse{VersionInfo: "v", Resources: []*anypb.Any{small, big}, TypeUrl: resource.RouteType, Nonce: fmt.Sprint(i)}
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := &discovery.DiscoveryResponse{}
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatal(err)
		}
		if got.GetNonce() != m.GetNonce() || got.GetVersionInfo() != "v" || len(got.GetResources()) != 2 ||
			!proto.Equal(got.Resources[0], big) || !proto.Equal(got.Resources[1], small) {
			t.Fatalf("response %d decodes to %v", i, got)
		}
		seg := data[0].ReadOnlyData()
		if first == nil {
			first = seg
		} else if unsafe.SliceData(seg) != unsafe.SliceData(first) {
			t.Fatalf("response %d encoded the big resource again", i)
		}
	}
}
