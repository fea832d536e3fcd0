package xds

import (
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
)

// TestConnectionsPerIdentity: over real mutual TLS, one identity may hold
// MaxConnsPerIdentity connections; the next is closed after its handshake
// and listed as too-many-connections, other identities are unaffected, and
// closing a connection frees its place.
func TestConnectionsPerIdentity(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := mtlsServerWith(t, c, Options{MaxConnsPerIdentity: 2})
	dial := func(id string) (*grpc.ClientConn, discovery.AggregatedDiscoveryServiceClient) {
		conn := tlsConn(t, addr, c, id, c.TrustPool())
		return conn, discovery.NewAggregatedDiscoveryServiceClient(conn)
	}

	first, a := dial(reviewsID)
	askSecrets(t, a, reviewsClass+"/reviews-0").next(t, 5*time.Second)
	_, b := dial(reviewsID)
	askSecrets(t, b, reviewsClass+"/reviews-1").next(t, 5*time.Second)
	if n := s.conns.open(reviewsID); n != 2 {
		t.Fatalf("%d connections counted for reviews, want 2", n)
	}

	_, third := dial(reviewsID)
	if err := refused(t, third, reviewsClass+"/reviews-2"); status.Code(err) != codes.Unavailable {
		t.Fatalf("third connection: %v, want Unavailable (closed after the handshake)", err)
	}
	found := false
	for _, r := range s.Rejections() {
		found = found || (r.Reason == apiv1.ReasonTooManyConnections && r.Identity == reviewsID &&
			r.Code == codes.ResourceExhausted.String() && strings.Contains(r.Error, "more than 2 open connections"))
	}
	if !found {
		t.Errorf("the refused connection is not listed: %+v", s.Rejections())
	}

	// Another identity has its own count.
	_, r := dial(ratingsID)
	askSecrets(t, r, ratingsClass+"/ratings-0").next(t, 5*time.Second)

	// Closing one of reviews' connections frees a place.
	first.Close()
	waitUntil(t, 5*time.Second, func() bool { return s.conns.open(reviewsID) == 1 })
	_, again := dial(reviewsID)
	askSecrets(t, again, reviewsClass+"/reviews-3").next(t, 5*time.Second)
}

func waitUntil(t *testing.T, d time.Duration, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}
