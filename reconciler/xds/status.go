package xds

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// rank orders sync states from best to worst.
func rank(s apiv1.SyncStatus) int {
	switch s {
	case apiv1.NotSent:
		return 1
	case apiv1.Stale:
		return 2
	case apiv1.Nacked:
		return 3
	}
	return 0
}

// typeState is what the server tracks of one type on one stream: what the
// status API shows, and the nonce of the last NACK, which it does not.
type typeState struct {
	apiv1.TypeStatus
	nackedNonce string
}

func (t *typeState) status() apiv1.SyncStatus {
	switch {
	case t.SentNonce == "":
		return apiv1.NotSent
	case t.nackedNonce == t.SentNonce:
		return apiv1.Nacked
	case t.AckedNonce == t.SentNonce:
		return apiv1.Synced
	default:
		return apiv1.Stale
	}
}

// proxyRevision is the revision a proxy runs, given its overall status and
// the server's live revision.
//
// A SYNCED proxy runs the live revision: every push sends a proxy exactly
// the types whose content changed for its class, so a type the live
// revision did not change (all but RDS after a weights-only change; every
// type of a class a commit did not touch) is already that revision's, as
// responses are labelled with the server's revision, not the one their
// class last changed in. The types' own ACKed revisions therefore lag, and
// none of them alone says what the proxy runs. During an Apply's push (a
// few milliseconds) a proxy about to be sent the new revision may briefly
// read as SYNCED on it.
//
// A proxy that is not SYNCED runs no single revision; it reports the
// newest one it ACKed (by ACK time) across its types, the revision it took
// at least in part. Empty when nothing was ACKed at a known revision.
func proxyRevision(status apiv1.SyncStatus, live string, types []apiv1.TypeStatus) string {
	if status == apiv1.Synced && live != "" {
		return live
	}
	var rev string
	var at time.Time
	for _, t := range types {
		if t.AckedRevision != "" && (rev == "" || t.AckedAt.After(at)) {
			rev, at = t.AckedRevision, t.AckedAt
		}
	}
	return rev
}

type streamKey struct {
	delta bool
	id    int64
}

type streamState struct {
	mu          sync.Mutex
	ctx         context.Context // the stream's, for Authorize
	key         streamKey
	peer        string
	connectedAt time.Time
	nodeID      string
	class       string
	types       map[string]*typeState
}

// streamRegistry tracks ACK/NACK per stream and type through
// go-control-plane's callbacks (go-control-plane itself keeps none, issues
// #954 and #582) and admits streams on their first request.
type streamRegistry struct {
	s       *Server
	mu      sync.RWMutex
	streams map[streamKey]*streamState
}

var _ xdsserver.Callbacks = (*streamRegistry)(nil)

func newStreamRegistry(s *Server) *streamRegistry {
	return &streamRegistry{s: s, streams: map[streamKey]*streamState{}}
}

func (r *streamRegistry) open(ctx context.Context, key streamKey) {
	st := &streamState{ctx: ctx, key: key, connectedAt: time.Now(), types: map[string]*typeState{}}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		st.peer = p.Addr.String()
	}
	if h, ok := ctx.Value(streamHolderKey{}).(*streamHolder); ok {
		h.mu.Lock()
		h.st = st
		h.mu.Unlock()
	}
	r.mu.Lock()
	r.streams[key] = st
	r.mu.Unlock()
	r.s.metrics.streams.WithLabelValues(protocol(key.delta)).Inc()
}

func (r *streamRegistry) closed(key streamKey) {
	r.mu.Lock()
	st := r.streams[key]
	delete(r.streams, key)
	r.mu.Unlock()
	r.s.metrics.streams.WithLabelValues(protocol(key.delta)).Dec()
	if st != nil && st.nodeID != "" {
		r.s.log.Debug("xds stream closed", "node", st.nodeID, "protocol", protocol(key.delta), "stream", key.id)
	}
}

func (r *streamRegistry) get(key streamKey) *streamState {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.streams[key]
}

// request records a request and, on a stream's first one, admits the node.
// A returned error ends the stream with that gRPC status; every one is a
// *refusal, recorded by the stream interceptor (observeStream).
func (r *streamRegistry) request(key streamKey, node *core.Node, typeURL, nonce, version string, nack *rpcstatus.Status) error {
	st := r.get(key)
	if st == nil {
		return status.Errorf(codes.Internal, "stream %d not registered", key.id)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.nodeID == "" {
		if node.GetId() == "" {
			return refuse(apiv1.ReasonNoNodeID, "", codes.InvalidArgument, "first request carries no node id")
		}
		class, err := r.s.admit(node.GetId())
		reason := apiv1.ReasonIdentity
		if err == nil {
			err = r.s.authorize(st.ctx, node.GetId(), class)
		} else {
			reason = admitReason(status.Code(err))
		}
		if err != nil {
			return refusalOf(reason, node.GetId(), err)
		}
		st.nodeID, st.class = node.GetId(), class
		r.s.log.Debug("xds stream admitted", "node", st.nodeID, "class", class, "protocol", protocol(key.delta), "peer", st.peer)
	} else if id := node.GetId(); id != "" && id != st.nodeID {
		return refuse(apiv1.ReasonNodeIDChanged, st.nodeID, codes.InvalidArgument, "node id changed from %q to %q on one stream", st.nodeID, id)
	}
	ts := st.types[typeURL]
	if ts == nil {
		if len(st.types) >= MaxTypesPerStream {
			return refuse(apiv1.ReasonLimit, st.nodeID, codes.InvalidArgument, "node %q: more than %d resource types on one stream", st.nodeID, MaxTypesPerStream)
		}
		ts = &typeState{TypeStatus: apiv1.TypeStatus{TypeURL: typeURL}}
		st.types[typeURL] = ts
	}
	if nonce == "" {
		return nil
	}
	now := time.Now()
	if nack != nil {
		n := &apiv1.Nack{Nonce: nonce, Error: clip(nack.GetMessage(), MaxErrorDetailBytes), At: now}
		if nonce == ts.SentNonce {
			n.Version, n.Revision = ts.SentVersion, ts.SentRevision
		}
		ts.LastNack, ts.nackedNonce = n, nonce
		r.s.metrics.nacks.WithLabelValues(typeLabel(typeURL)).Inc()
		r.s.log.Warn("xds config rejected by proxy", "node", st.nodeID, "type", typeURL,
			"version", n.Version, "revision", n.Revision, "error", n.Error)
		return nil
	}
	switch {
	case nonce == ts.SentNonce && nonce != ts.nackedNonce && (key.delta || version == ts.SentVersion):
		ts.AckedVersion, ts.AckedRevision, ts.AckedNonce, ts.AckedAt = ts.SentVersion, ts.SentRevision, nonce, now
	case !key.delta && nonce != ts.nackedNonce:
		// An ACK of an older response: the proxy says what it has.
		ts.AckedVersion, ts.AckedRevision, ts.AckedNonce, ts.AckedAt = version, "", nonce, now
	}
	return nil
}

// admitReason is the rejection reason of an admit error.
func admitReason(c codes.Code) string {
	switch c {
	case codes.Unavailable:
		return apiv1.ReasonNotReady
	case codes.NotFound:
		return apiv1.ReasonUnknownClass
	}
	return apiv1.ReasonInvalidNodeID
}

// sent records a response about to be sent.
func (r *streamRegistry) sent(key streamKey, typeURL, version, revision, nonce string, n int, size int) {
	r.s.metrics.pushes.WithLabelValues(typeLabel(typeURL), protocol(key.delta)).Inc()
	r.s.metrics.bytes.WithLabelValues(typeLabel(typeURL)).Add(float64(size))
	st := r.get(key)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ts := st.types[typeURL]
	if ts == nil {
		ts = &typeState{TypeStatus: apiv1.TypeStatus{TypeURL: typeURL}}
		st.types[typeURL] = ts
	}
	ts.SentVersion, ts.SentRevision, ts.SentNonce, ts.SentResources, ts.SentAt = version, revision, nonce, n, time.Now()
}

// Proxies returns the state of every admitted stream, sorted by node id.
func (s *Server) Proxies() []apiv1.Proxy {
	s.streams.mu.RLock()
	states := make([]*streamState, 0, len(s.streams.streams))
	for _, st := range s.streams.streams {
		states = append(states, st)
	}
	s.streams.mu.RUnlock()
	live := s.Revision()
	out := make([]apiv1.Proxy, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		if st.nodeID == "" {
			st.mu.Unlock()
			continue
		}
		p := apiv1.Proxy{NodeID: st.nodeID, Class: st.class, Protocol: protocol(st.key.delta),
			Stream: st.key.id, Peer: st.peer, ConnectedAt: st.connectedAt, Status: apiv1.Synced}
		for _, ts := range st.types {
			t := ts.TypeStatus
			t.Status = ts.status()
			if t.LastNack != nil {
				n := *t.LastNack
				t.LastNack = &n
			}
			if rank(t.Status) > rank(p.Status) {
				p.Status = t.Status
			}
			p.Types = append(p.Types, t)
		}
		st.mu.Unlock()
		if len(p.Types) == 0 {
			p.Status = apiv1.NotSent
		}
		slices.SortFunc(p.Types, func(a, b apiv1.TypeStatus) int { return cmp.Compare(a.TypeURL, b.TypeURL) })
		p.Revision = proxyRevision(p.Status, live, p.Types)
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b apiv1.Proxy) int {
		return cmp.Or(cmp.Compare(a.NodeID, b.NodeID), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Stream, b.Stream))
	})
	return out
}

// OnStreamOpen registers a SotW stream.
func (r *streamRegistry) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	r.open(ctx, streamKey{id: id})
	return nil
}

// OnStreamClosed forgets a SotW stream.
func (r *streamRegistry) OnStreamClosed(id int64, _ *core.Node) { r.closed(streamKey{id: id}) }

// OnStreamRequest admits the node and records ACK/NACK.
func (r *streamRegistry) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	if ref := checkSotw(req); ref != nil {
		return ref
	}
	return r.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), req.GetErrorDetail())
}

// OnStreamResponse records what a SotW stream is sent.
func (r *streamRegistry) OnStreamResponse(ctx context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	revision, _ := ctx.Value(revisionKey{}).(string)
	r.sent(streamKey{id: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), revision, resp.GetNonce(), len(resp.GetResources()), r.s.bases.sotwSize(resp))
}

// OnDeltaStreamOpen registers a delta stream.
func (r *streamRegistry) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	r.open(ctx, streamKey{delta: true, id: id})
	return nil
}

// OnDeltaStreamClosed forgets a delta stream.
func (r *streamRegistry) OnDeltaStreamClosed(id int64, _ *core.Node) {
	r.closed(streamKey{delta: true, id: id})
}

// OnStreamDeltaRequest admits the node and records ACK/NACK.
func (r *streamRegistry) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	if ref := checkDelta(req); ref != nil {
		return ref
	}
	return r.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), "", req.GetErrorDetail())
}

// OnStreamDeltaResponse records what a delta stream is sent. Its version is
// the revision: delta has no per-type version, only per resource.
func (r *streamRegistry) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	rev := resp.GetSystemVersionInfo()
	r.sent(streamKey{delta: true, id: id}, resp.GetTypeUrl(), rev, rev, resp.GetNonce(), len(resp.GetResources()), r.s.bases.deltaSize(resp))
}

// OnFetchRequest is unused: only ADS streams are served.
func (r *streamRegistry) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return nil
}

// OnFetchResponse is unused: only ADS streams are served.
func (r *streamRegistry) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}

func protocol(delta bool) string {
	if delta {
		return "delta"
	}
	return "sotw"
}
