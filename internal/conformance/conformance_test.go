package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gitmesh/gitmesh/examples/grpc-canary/hello"
	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// Node ids of the test's workloads (CLASS/INSTANCE).
const (
	clientClass = "proxyless/default/client/v1"
	clientNode  = clientClass + "/client-0"
	deltaNode   = clientClass + "/delta-0"
	secureNode  = "proxyless/default/secure/v1/secure-0"
)

// meshVars are the template's fields: the ports the real servers got and
// the canary weights.
type meshVars struct {
	GreeterV1, GreeterV2, Secure int
	V1Weight, V2Weight           int
}

// TestProxylessConformance is issue 3's acceptance: the conformance mesh,
// rendered and served by gitmesh, drives real grpc-go xDS clients and an
// xDS-enabled grpc-go server, which must ACK everything and route, fault
// and authorize as the mesh says.
func TestProxylessConformance(t *testing.T) {
	start := time.Now()
	// The xDS server listener is named after 0.0.0.0:PORT (grpc-go's name
	// template fills in the listening address), so the RBAC-enforcing
	// server binds the wildcard address; clients still reach it on loopback.
	secureLis := listen(t, "0.0.0.0:0")
	vars := meshVars{GreeterV1: serveGreeter(t, "v1"), GreeterV2: serveGreeter(t, "v2"), Secure: portOf(secureLis), V1Weight: 80, V2Weight: 20}
	first := loadResult(t, "testdata/mesh.cue.tmpl", vars)
	bundle := first.Bundle
	loaded := time.Since(start)
	m := startMesh(t, "conformance-1", bundle)

	m.serveXDSGreeter(t, secureLis, secureNode, "v1")
	r := m.resolver(t, clientNode)
	dialed := time.Now()
	greeter := dial(t, r, "greeter:50051")
	firstRPC(t, greeter)
	t.Logf("mesh loaded and rendered in %v; dial to first RPC through xds:/// %v", loaded, time.Since(dialed))
	// Every channel is opened here, not in the subtests, so that all of
	// them are still subscribed when the last subtest checks the ACKs.
	flaky := dial(t, r, "flaky:50053")
	secureConn := dialConn(t, r, "secure:50052")
	delta := newDeltaClient(t, m.addr, deltaNode)

	t.Run("split 80/20", func(t *testing.T) {
		counts := split(t, greeter, 1000, nil)
		t.Logf("1000 RPCs: v1=%d v2=%d", counts["v1"], counts["v2"])
		if v1 := counts["v1"]; v1 < 740 || v1 > 860 || counts["v1"]+counts["v2"] != 1000 {
			t.Errorf("v1 got %d of 1000 (v2 %d), want 740..860", v1, counts["v2"])
		}
	})

	t.Run("header pins v2", func(t *testing.T) {
		counts := split(t, greeter, 50, metadata.Pairs("x-version", "v2"))
		if counts["v2"] != 50 {
			t.Errorf("x-version: v2 reached %v, want v2 50 times", counts)
		}
		// Another value does not match, so the canary split applies: all 50
		// on v2 would happen with probability 0.2^50.
		counts = split(t, greeter, 50, metadata.Pairs("x-version", "v3"))
		if counts["v1"] == 0 {
			t.Errorf("x-version: v3 reached %v, want the 80/20 split", counts)
		}
	})

	t.Run("fault abort", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			md   metadata.MD
			want codes.Code
		}{
			{"grpcStatus 8", nil, codes.ResourceExhausted},
			{"httpStatus 503", metadata.Pairs("x-fault", "http"), codes.Unavailable},
		} {
			for i := range 20 {
				ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), tc.md), waitLimit)
				v, err := flaky.SayHello(ctx, "conformance", grpc.WaitForReady(true))
				cancel()
				if status.Code(err) != tc.want {
					t.Fatalf("%s: call %d answered %q, %v; want %v", tc.name, i, v, err, tc.want)
				}
				if i == 0 {
					t.Logf("%s: %v", tc.name, err)
				}
			}
		}
	})

	t.Run("rbac on xds server", func(t *testing.T) {
		sec := hello.NewClient(secureConn)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if v, err := sec.SayHello(ctx, "conformance", grpc.WaitForReady(true)); err != nil || v != "v1" {
			t.Fatalf("allowed SayHello: %q, %v; want \"v1\"", v, err)
		}
		_, err := sec.SayGoodbye(ctx, "conformance")
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("SayGoodbye (deny rule): %v; want PermissionDenied", err)
		}
		t.Logf("deny rule: %v", err)
		_, err = healthpb.NewHealthClient(secureConn).Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("health Check (matches no allow rule): %v; want PermissionDenied", err)
		}
		t.Logf("no allow rule: %v", err)
	})

	t.Run("declared traffic tests agree with grpc-go", func(t *testing.T) {
		crossCheck(t, first, r)
	})

	// Last, so every channel has subscribed to everything it will use.
	t.Run("everything ACKed", func(t *testing.T) {
		t.Logf("%s:\n%s", clientNode, describe(waitSynced(t, m.srv, clientNode, rendered()...)))
		t.Logf("%s:\n%s", secureNode, describe(waitSynced(t, m.srv, secureNode, resource.ListenerType)))
		if rj := m.srv.Rejections(); len(rj) > 0 {
			t.Errorf("rejected streams: %+v", rj)
		}
	})
	t.Run("delta walk", func(t *testing.T) {
		delta.t = t
		delta.walk("greeter:50051", "flaky:50053", "secure:50052")
		delta.matchesBundle(bundle.Proxy(clientClass))
		for _, p := range waitSynced(t, m.srv, deltaNode, rendered()...) {
			if p.Protocol != "delta" {
				t.Errorf("stream %d of %s speaks %q, want delta", p.Stream, deltaNode, p.Protocol)
			}
		}
	})

	t.Run("weights move", func(t *testing.T) {
		delta.t = t
		vars.V1Weight, vars.V2Weight = 50, 50
		next := loadMesh(t, "testdata/mesh.cue.tmpl", vars)
		applied := time.Now()
		if err := m.srv.Apply(next.Update("conformance-2")); err != nil {
			t.Fatal(err)
		}
		waitAcked(t, m.srv, clientNode, resource.RouteType, "conformance-2")
		t.Logf("apply to grpc-go ACK of the new route: %v", time.Since(applied))
		counts := split(t, greeter, 1000, nil)
		t.Logf("1000 RPCs after the change: v1=%d v2=%d", counts["v1"], counts["v2"])
		if v1 := counts["v1"]; v1 < 430 || v1 > 570 {
			t.Errorf("v1 got %d of 1000 (v2 %d), want 430..570", v1, counts["v2"])
		}
		// Delta sends only what changed: greeter's route configuration.
		d := delta.next()
		if d.GetTypeUrl() != resource.RouteType || len(d.GetResources()) != 1 || d.GetResources()[0].GetName() != "greeter:50051" {
			t.Errorf("delta after the weight change: %s %v, want only RouteConfiguration greeter:50051", shortType(d.GetTypeUrl()), names(d.GetResources()))
		}
		delta.handle(d)
		select {
		case extra := <-delta.recv:
			t.Errorf("unexpected delta push of %s %v", shortType(extra.GetTypeUrl()), names(extra.GetResources()))
		case <-time.After(300 * time.Millisecond):
		}
		delta.matchesBundle(next.Proxy(clientClass))
		waitSynced(t, m.srv, clientNode, rendered()...)
		waitSynced(t, m.srv, deltaNode, rendered()...)
	})
	t.Logf("whole conformance run: %v", time.Since(start))
}

// firstRPC waits until the channel has its config and one RPC succeeds.
func firstRPC(t testing.TB, c *hello.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := c.SayHello(ctx, "conformance", grpc.WaitForReady(true)); err != nil {
		t.Fatalf("first RPC through xds:///: %v", err)
	}
}

// split sends n RPCs with md and counts the versions that answered.
func split(t testing.TB, c *hello.Client, n int, md metadata.MD) map[string]int {
	t.Helper()
	counts := map[string]int{}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), waitLimit)
	defer cancel()
	for i := range n {
		v, err := c.SayHello(ctx, "conformance")
		if err != nil {
			t.Fatalf("RPC %d: %v", i, err)
		}
		counts[strings.TrimSpace(v)]++
	}
	return counts
}

// rendered is every type render produces, the ones a proxyless client follows.
func rendered() []string {
	r := snapshot.Rendered()
	return r[:]
}
