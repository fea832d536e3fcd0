package xds

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gitmesh/gitmesh/reconciler/api"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
)

// TestRequestLimits: every field a proxy sends that the server keeps,
// logs or iterates is bounded; an over-limit request is refused with
// InvalidArgument and a short message naming the limit, never the value.
func TestRequestLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	manyNames := make([]string, MaxResourceNames+1)
	for i := range manyNames {
		manyNames[i] = "n"
	}
	meta, _ := structpb.NewStruct(map[string]any{"blob": long(MaxNodeBytes)})
	node := &core.Node{Id: nodeA}
	tests := []struct {
		name  string
		sotw  *discovery.DiscoveryRequest
		delta *discovery.DeltaDiscoveryRequest
		msg   string
	}{
		{name: "node id", sotw: &discovery.DiscoveryRequest{Node: &core.Node{Id: classA + "/" + long(3<<20)}},
			msg: `node id "sidecar/default/a/v1/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…" is 3145749 bytes, more than the limit of 512`},
		{name: "metadata", sotw: &discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA, Metadata: meta}},
			msg: "the node (metadata included) is"},
		{name: "user agent", delta: &discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA, UserAgentName: long(300)}},
			msg: "user agent name"},
		{name: "user agent version", sotw: &discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA, UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: long(300)}}},
			msg: "user agent version"},
		{name: "type url", sotw: &discovery.DiscoveryRequest{Node: node, TypeUrl: long(300)}, msg: "type URL"},
		{name: "nonce", delta: &discovery.DeltaDiscoveryRequest{Node: node, ResponseNonce: long(200)}, msg: "response nonce"},
		{name: "version", sotw: &discovery.DiscoveryRequest{Node: node, VersionInfo: long(300)}, msg: "version_info"},
		{name: "sotw names", sotw: &discovery.DiscoveryRequest{Node: node, ResourceNames: manyNames},
			msg: "resource_names has 16385 names, more than the limit of 16384"},
		{name: "sotw name", sotw: &discovery.DiscoveryRequest{Node: node, ResourceNames: []string{"a", long(2000)}}, msg: "resource name"},
		{name: "delta names", delta: &discovery.DeltaDiscoveryRequest{Node: node, ResourceNamesSubscribe: manyNames}, msg: "resource_names_subscribe has 16385 names"},
		{name: "delta unsubscribe", delta: &discovery.DeltaDiscoveryRequest{ResourceNamesUnsubscribe: []string{long(2000)}}, msg: "resource_names_unsubscribe: resource name"},
		{name: "delta locators", delta: &discovery.DeltaDiscoveryRequest{ResourceLocatorsSubscribe: []*discovery.ResourceLocator{{Name: long(2000)}}}, msg: "resource_locators_subscribe"},
		{name: "initial versions", delta: &discovery.DeltaDiscoveryRequest{Node: node, InitialResourceVersions: map[string]string{"a": long(300)}}, msg: "initial_resource_versions: version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ref *refusal
			if tt.sotw != nil {
				ref = checkSotw(tt.sotw)
			} else {
				ref = checkDelta(tt.delta)
			}
			if ref == nil {
				t.Fatal("accepted")
			}
			if ref.st.Code() != codes.InvalidArgument || ref.reason != apiv1.ReasonLimit || !strings.Contains(ref.st.Message(), tt.msg) {
				t.Errorf("got %v %s %q, want InvalidArgument limit containing %q", ref.st.Code(), ref.reason, ref.st.Message(), tt.msg)
			}
			if len(ref.st.Message()) > 300 || len(ref.nodeID) > MaxNodeIDBytes+len("…") {
				t.Errorf("refusal holds %d bytes of text and a %d-byte node id", len(ref.st.Message()), len(ref.nodeID))
			}
		})
	}
	ok := &discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA, UserAgentName: "envoy"}, TypeUrl: resource.ClusterType,
		ResourceNames: []string{"c1", "c2"}, VersionInfo: "v1", ResponseNonce: "7"}
	if ref := checkSotw(ok); ref != nil {
		t.Errorf("a normal request was refused: %v", ref)
	}
}

// TestRejectionLogCollapsesAndCaps: one peer host and reason is one entry
// with a count whatever the port; at most maxRejections entries, the least
// recently seen dropped and counted; a repeating refusal is logged once a
// minute, and all refusals at most rejectionLogBurst times a minute.
func TestRejectionLogCollapsesAndCaps(t *testing.T) {
	var l rejectionLog
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	logged := 0
	for i := range 5 {
		_, log, repeats, _ := l.add(apiv1.Rejection{Peer: "10.0.0.1:" + string(rune('1'+i)), Code: "Unauthenticated", Reason: apiv1.ReasonTLSNoCertificate, At: at.Add(time.Duration(i) * 20 * time.Second)})
		if log {
			logged++
			if i == 3 && repeats != 2 {
				t.Errorf("repeats = %d, want 2 (the two unlogged since the first)", repeats)
			}
		}
	}
	list, dropped := l.list()
	if len(list) != 1 || list[0].Count != 5 || !list[0].FirstAt.Equal(at) || !list[0].At.Equal(at.Add(80*time.Second)) || dropped != 0 {
		t.Fatalf("list = %+v dropped %d, want one entry counting 5", list, dropped)
	}
	if logged != 2 {
		t.Errorf("logged %d times over 80 s, want 2 (first, then a minute later)", logged)
	}

	logged = 0
	for i := range 100 {
		_, log, _, _ := l.add(apiv1.Rejection{NodeID: "sidecar/default/x/v1/p-" + strings.Repeat("i", i), Code: "NotFound", Reason: apiv1.ReasonUnknownClass, At: at.Add(2*time.Minute + time.Duration(i)*time.Millisecond)})
		if log {
			logged++
		}
	}
	list, dropped = l.list()
	// 101 entries went in, 37 were dropped: the TLS one (count 5) and 36
	// node ones (count 1 each).
	if len(list) != maxRejections || dropped != 5+36 {
		t.Errorf("%d entries, %d dropped, want %d and %d", len(list), dropped, maxRejections, 5+36)
	}
	if logged != rejectionLogBurst {
		t.Errorf("logged %d distinct refusals in a second, want the burst limit %d", logged, rejectionLogBurst)
	}
	if !strings.HasSuffix(list[0].NodeID, strings.Repeat("i", 99)) {
		t.Errorf("newest entry first: got %q", list[0].NodeID)
	}
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type liveStatus struct{}

func (liveStatus) Status() apiv1.Status {
	return apiv1.Status{Live: &apiv1.Revision{ID: "r1"}}
}
func (liveStatus) Ready() bool { return true }

// TestFloodOfHugeNodeIDs is issue 12's acceptance for peers, over real
// mutual TLS: 20 connections, each with a valid mesh certificate and a
// 3 MB node id, and a handful of handshake failures (plaintext, no client
// certificate, another CA's certificate). /api/v1/proxies, served by the
// api handler over this server's state, stays small; the refusals are
// collapsed with counts, counted in the metric by reason, logged once per
// peer and reason; the heap does not keep what the peers sent.
func TestFloodOfHugeNodeIDs(t *testing.T) {
	c, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.New(ca.Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	s, addr := mtlsServerLog(t, c, slog.New(slog.NewTextHandler(logs, nil)))

	// A proxy that is admitted stays listed as before.
	good := askSecrets(t, tlsClient(t, addr, c, reviewsID, c.TrustPool()), reviewsClass+"/reviews-0")
	good.next(t, 5*time.Second)

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	huge := reviewsClass + "/" + strings.Repeat("a", 3<<20)
	for i := range 20 {
		// A new connection each time, as a flood would.
		err := refused(t, tlsClient(t, addr, c, reviewsID, c.TrustPool()), huge)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "more than the limit of 512") {
			t.Fatalf("attempt %d: %v, want InvalidArgument naming the limit", i, err)
		}
	}
	// Handshake failures.
	for name, client := range map[string]discovery.AggregatedDiscoveryServiceClient{
		"no client certificate": tlsClient(t, addr, nil, "", c.TrustPool()),
		"another CA":            forcedCertClient(t, addr, other, c),
		"plaintext":             dial(t, addr),
	} {
		if err := refused(t, client, reviewsClass+"/reviews-1"); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: %v, want Unavailable (handshake refused)", name, err)
		}
	}

	// A TCP probe: connect, close. Listed, but as what it is.
	probe, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(s.metrics.rejectedConns.WithLabelValues(apiv1.ReasonTLSClosed)) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the TCP probe was not recorded")
		}
	}

	h := api.Handler(api.Options{Status: liveStatus{}, Proxies: s})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/proxies", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/proxies: %d", rec.Code)
	}
	if n := rec.Body.Len(); n > 1<<20 {
		t.Fatalf("/api/v1/proxies is %d bytes, want under 1 MB", n)
	}
	t.Logf("/api/v1/proxies: %d bytes", rec.Body.Len())

	byReason := map[string]apiv1.Rejection{}
	for _, r := range s.Rejections() {
		if _, dup := byReason[r.Reason]; dup {
			t.Errorf("two entries for %s from one peer: %+v", r.Reason, s.Rejections())
		}
		byReason[r.Reason] = r
	}
	lim := byReason[apiv1.ReasonLimit]
	if lim.Count != 20 || lim.Code != "InvalidArgument" || lim.Identity != reviewsID || len(lim.NodeID) > MaxNodeIDBytes+len("…") || !strings.HasPrefix(lim.NodeID, reviewsClass+"/aaa") {
		t.Errorf("over-limit entry = count %d code %s identity %q node id of %d bytes, want 20 InvalidArgument from reviews, clipped",
			lim.Count, lim.Code, lim.Identity, len(lim.NodeID))
	}
	for _, reason := range []string{apiv1.ReasonTLSNoCertificate, apiv1.ReasonTLSUnknownAuthority, apiv1.ReasonTLSPlaintext, apiv1.ReasonTLSClosed} {
		r, ok := byReason[reason]
		if !ok || r.Count < 1 || r.Code != "Unauthenticated" || !strings.HasPrefix(r.Peer, "127.0.0.1:") {
			t.Errorf("%s: %+v, want an Unauthenticated entry from 127.0.0.1", reason, r)
		}
		if got := testutil.ToFloat64(s.metrics.rejectedConns.WithLabelValues(reason)); got < 1 || got < float64(r.Count) {
			t.Errorf("gitmesh_xds_rejected_connections_total{reason=%q} = %v, want at least the entry's count %d (failing clients keep retrying)", reason, got, r.Count)
		}
	}
	if got := testutil.ToFloat64(s.metrics.rejectedConns.WithLabelValues(apiv1.ReasonLimit)); got != 20 {
		t.Errorf("gitmesh_xds_rejected_connections_total{reason=\"limit\"} = %v, want 20", got)
	}
	if ps := s.Proxies(); len(ps) != 1 || ps[0].NodeID != reviewsClass+"/reviews-0" {
		t.Errorf("proxies = %+v, want reviews-0 alone", ps)
	}

	out := logs.String()
	if n := strings.Count(out, "reason=limit"); n != 1 {
		t.Errorf("the over-limit refusal was logged %d times, want once (rate-limited)", n)
	}
	if len(out) > 64<<10 {
		t.Errorf("logs hold %d bytes, want a few KiB", len(out))
	}

	// A sanity bound, not a benchmark: what 20 refused 3 MB requests leave
	// behind after a GC must be far below the 60+ MB that keeping each node
	// id (let alone its error text and log line) would hold.
	var after runtime.MemStats
	runtime.GC()
	runtime.GC() // the second empties sync.Pools' victim caches (grpc's buffers)
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 24<<20 {
		t.Errorf("live heap grew by %d MB over the flood, want it flat-ish", grew>>20)
	}
	t.Logf("live heap %d MB before, %d MB after", before.HeapAlloc>>20, after.HeapAlloc>>20)
}

// forcedCertClient presents a certificate of other to a server of c. Go's
// TLS client does not send a certificate the server's CertificateRequest
// does not list an issuer of, so the certificate is sent by
// GetClientCertificate, as a client built to probe would.
func forcedCertClient(t *testing.T, addr string, other, c *ca.CA) discovery.AggregatedDiscoveryServiceClient {
	t.Helper()
	is, err := other.Issue(reviewsID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: c.TrustPool(), ServerName: "localhost",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return discovery.NewAggregatedDiscoveryServiceClient(conn)
}

// TestOversizedMessageIsRecorded: a message over MaxRecvMsgSize is refused
// by grpc before it is read; go-control-plane would end the stream quietly,
// the interceptor turns that into ResourceExhausted and records it.
func TestOversizedMessageIsRecorded(t *testing.T) {
	s := newTestServer(t)
	apply(t, s, "r1", baseConfig(t))
	c := dial(t, startServer(t, s))
	err := refused(t, c, classA+"/"+strings.Repeat("a", MaxRecvMsgSize))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("got %v, want ResourceExhausted", err)
	}
	// grpc may write the status before the handler returns: wait for it.
	var rej []apiv1.Rejection
	for deadline := time.Now().Add(5 * time.Second); len(rej) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rej = s.Rejections()
	}
	if len(rej) != 1 || rej[0].Reason != apiv1.ReasonMessageTooLarge || rej[0].Code != "ResourceExhausted" || len(rej[0].Error) > maxRejectionText+len("…") {
		t.Errorf("rejections = %+v, want one message-too-large", rej)
	}
}

// TestIdleConnectionClosed: a connection whose only stream was refused
// holds nothing open; it is closed after MaxConnectionIdle (2 min by
// default, shortened here).
func TestIdleConnectionClosed(t *testing.T) {
	s, err := New(Options{Logger: quietLogger(), ShutdownTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Keepalive.MaxConnectionIdle != DefaultMaxConnectionIdle {
		t.Errorf("default MaxConnectionIdle = %v, want %v", s.opts.Keepalive.MaxConnectionIdle, DefaultMaxConnectionIdle)
	}
	s.opts.Keepalive.MaxConnectionIdle = 300 * time.Millisecond
	addr := startServer(t, s)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := discovery.NewAggregatedDiscoveryServiceClient(conn)
	if err := refused(t, c, "malformed"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for st := conn.GetState(); st != connectivity.Idle; st = conn.GetState() {
		if !conn.WaitForStateChange(ctx, st) {
			t.Fatalf("connection still %v after 5 s, want closed by the server (idle)", st)
		}
	}
}

// TestStreamLimits: what a stream adds up to over many requests is bounded
// too: a delta subscription grown past MaxResourceNames by requests each
// within it, and more than MaxTypesPerStream type URLs on one stream. Both
// end the stream with InvalidArgument and are recorded.
func TestStreamLimits(t *testing.T) {
	s := newTestServer(t)
	apply(t, s, "r1", baseConfig(t))
	c := dial(t, startServer(t, s))

	st, err := c.DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	for batch := range 2 {
		names := make([]string, 10000)
		for i := range names {
			names[i] = fmt.Sprintf("c-%d-%d", batch, i)
		}
		st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: names})
	}
	var err2 error
	for err2 == nil {
		select {
		case <-p.ch: // the first batch's (empty) answer
		case err2 = <-p.err:
		case <-time.After(wait):
			t.Fatal("delta stream still open after 20000 names")
		}
	}
	if s := status.Convert(err2); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "holds 20000 names, more than the limit of 16384") {
		t.Errorf("delta: %v, want InvalidArgument naming the limit", err2)
	}

	sotw, err := c.StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sp := startPump(sotw.Recv)
	for i := range MaxTypesPerStream + 1 {
		sotw.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: fmt.Sprintf("type.example/T%d", i)})
	}
	var err3 error
	for err3 == nil {
		select {
		case <-sp.ch:
		case err3 = <-sp.err:
		case <-time.After(wait):
			t.Fatal("sotw stream still open after 17 types")
		}
	}
	if s := status.Convert(err3); s.Code() != codes.InvalidArgument || !strings.Contains(s.Message(), "more than 16 resource types on one stream") {
		t.Errorf("sotw: %v, want InvalidArgument naming the limit", err3)
	}

	var rej []apiv1.Rejection
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if rej = s.Rejections(); len(rej) == 1 && rej[0].Count == 2 {
			break
		}
	}
	if len(rej) != 1 || rej[0].Reason != apiv1.ReasonLimit || rej[0].Count != 2 || rej[0].NodeID != nodeA {
		t.Errorf("rejections = %+v, want one limit entry for %s counting 2", rej, nodeA)
	}
}
