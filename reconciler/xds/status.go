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
)

// SyncStatus is a proxy's state for one type, named as istioctl
// proxy-status names it, so operators read it without a glossary.
type SyncStatus string

// Sync states, from best to worst.
const (
	// Synced: the proxy ACKed the last response it was sent.
	Synced SyncStatus = "SYNCED"
	// NotSent: the proxy asked, nothing was sent yet (nothing it asked for exists).
	NotSent SyncStatus = "NOT SENT"
	// Stale: a response was sent and is not ACKed yet, or an older one was.
	Stale SyncStatus = "STALE"
	// Nacked: the proxy rejected the last response; it keeps its previous config.
	Nacked SyncStatus = "NACKED"
)

func (s SyncStatus) rank() int {
	switch s {
	case NotSent:
		return 1
	case Stale:
		return 2
	case Nacked:
		return 3
	}
	return 0
}

// maxErrorText bounds the NACK text kept per type: a proxy's error detail is
// untrusted input and ends up in the status API.
const maxErrorText = 2048

// Nack is a proxy's rejection of one response.
type Nack struct {
	Version  string    `json:"version"`
	Revision string    `json:"revision,omitempty"`
	Nonce    string    `json:"nonce"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// TypeStatus is what one proxy has of one resource type: what was sent,
// what it ACKed, and its last NACK.
type TypeStatus struct {
	TypeURL       string     `json:"typeUrl"`
	Status        SyncStatus `json:"status"`
	SentVersion   string     `json:"sentVersion,omitempty"`
	SentRevision  string     `json:"sentRevision,omitempty"`
	SentNonce     string     `json:"sentNonce,omitempty"`
	SentResources int        `json:"sentResources"`
	SentAt        time.Time  `json:"sentAt,omitzero"`
	AckedVersion  string     `json:"ackedVersion,omitempty"`
	AckedRevision string     `json:"ackedRevision,omitempty"`
	AckedNonce    string     `json:"ackedNonce,omitempty"`
	AckedAt       time.Time  `json:"ackedAt,omitzero"`
	LastNack      *Nack      `json:"lastNack,omitempty"`

	nackedNonce string
}

func (t *TypeStatus) status() SyncStatus {
	switch {
	case t.SentNonce == "":
		return NotSent
	case t.nackedNonce == t.SentNonce:
		return Nacked
	case t.AckedNonce == t.SentNonce:
		return Synced
	default:
		return Stale
	}
}

// ProxyStatus is one connected stream of one proxy, what the status API
// serves as its proxy-status. Status is the worst of its types.
type ProxyStatus struct {
	NodeID      string       `json:"nodeId"`
	Class       string       `json:"class"`
	Protocol    string       `json:"protocol"` // "sotw" or "delta"
	Stream      int64        `json:"stream"`
	Peer        string       `json:"peer,omitempty"`
	ConnectedAt time.Time    `json:"connectedAt"`
	Status      SyncStatus   `json:"status"`
	Types       []TypeStatus `json:"types"`
}

// Rejection records a stream the server refused (malformed node id, unknown
// class), so the status API shows proxies that never got config.
type Rejection struct {
	NodeID string `json:"nodeId"`
	Peer   string `json:"peer,omitempty"`
	// Identity is the SPIFFE id of the peer's client certificate, if any.
	Identity string    `json:"identity,omitempty"`
	Code     string    `json:"code"`
	Error    string    `json:"error"`
	At       time.Time `json:"at"`
}

// maxRejections bounds the rejection log; a misconfigured fleet retries.
const maxRejections = 64

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
	types       map[string]*TypeStatus
}

// streamRegistry tracks ACK/NACK per stream and type through
// go-control-plane's callbacks (go-control-plane itself keeps none, issues
// #954 and #582) and admits streams on their first request.
type streamRegistry struct {
	s          *Server
	mu         sync.RWMutex
	streams    map[streamKey]*streamState
	rejMu      sync.Mutex
	rejections []Rejection
}

var _ xdsserver.Callbacks = (*streamRegistry)(nil)

func newStreamRegistry(s *Server) *streamRegistry {
	return &streamRegistry{s: s, streams: map[streamKey]*streamState{}}
}

func (r *streamRegistry) open(ctx context.Context, key streamKey) {
	st := &streamState{ctx: ctx, key: key, connectedAt: time.Now(), types: map[string]*TypeStatus{}}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		st.peer = p.Addr.String()
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
// A returned error ends the stream with that gRPC status.
func (r *streamRegistry) request(key streamKey, node *core.Node, typeURL, nonce, version string, nack *rpcstatus.Status) error {
	st := r.get(key)
	if st == nil {
		return status.Errorf(codes.Internal, "stream %d not registered", key.id)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.nodeID == "" {
		if node.GetId() == "" {
			return r.reject(st, "", status.Error(codes.InvalidArgument, "first request carries no node id"))
		}
		class, err := r.s.admit(node.GetId())
		if err == nil {
			err = r.s.authorize(st.ctx, node.GetId(), class)
		}
		if err != nil {
			return r.reject(st, node.GetId(), err)
		}
		st.nodeID, st.class = node.GetId(), class
		r.s.log.Debug("xds stream admitted", "node", st.nodeID, "class", class, "protocol", protocol(key.delta), "peer", st.peer)
	} else if id := node.GetId(); id != "" && id != st.nodeID {
		return status.Errorf(codes.InvalidArgument, "node id changed from %q to %q on one stream", st.nodeID, id)
	}
	ts := st.types[typeURL]
	if ts == nil {
		ts = &TypeStatus{TypeURL: typeURL}
		st.types[typeURL] = ts
	}
	if nonce == "" {
		return nil
	}
	now := time.Now()
	if nack != nil {
		n := &Nack{Nonce: nonce, Error: truncate(nack.GetMessage(), maxErrorText), At: now}
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
		ts = &TypeStatus{TypeURL: typeURL}
		st.types[typeURL] = ts
	}
	ts.SentVersion, ts.SentRevision, ts.SentNonce, ts.SentResources, ts.SentAt = version, revision, nonce, n, time.Now()
}

func (r *streamRegistry) reject(st *streamState, nodeID string, err error) error {
	s, _ := status.FromError(err)
	rej := Rejection{NodeID: nodeID, Peer: st.peer, Code: s.Code().String(), Error: s.Message(), At: time.Now()}
	if st.ctx != nil {
		rej.Identity, _ = PeerIdentity(st.ctx)
	}
	r.rejMu.Lock()
	if len(r.rejections) == maxRejections {
		r.rejections = slices.Delete(r.rejections, 0, 1)
	}
	r.rejections = append(r.rejections, rej)
	r.rejMu.Unlock()
	r.s.metrics.rejected.WithLabelValues(rej.Code).Inc()
	r.s.log.Warn("xds stream refused", "node", nodeID, "peer", st.peer, "identity", rej.Identity, "code", rej.Code, "error", rej.Error)
	return err
}

// Proxies returns the state of every admitted stream, sorted by node id.
func (s *Server) Proxies() []ProxyStatus {
	s.streams.mu.RLock()
	states := make([]*streamState, 0, len(s.streams.streams))
	for _, st := range s.streams.streams {
		states = append(states, st)
	}
	s.streams.mu.RUnlock()
	out := make([]ProxyStatus, 0, len(states))
	for _, st := range states {
		st.mu.Lock()
		if st.nodeID == "" {
			st.mu.Unlock()
			continue
		}
		p := ProxyStatus{NodeID: st.nodeID, Class: st.class, Protocol: protocol(st.key.delta),
			Stream: st.key.id, Peer: st.peer, ConnectedAt: st.connectedAt, Status: Synced}
		for _, ts := range st.types {
			t := *ts
			t.Status = ts.status()
			if t.LastNack != nil {
				n := *t.LastNack
				t.LastNack = &n
			}
			if t.Status.rank() > p.Status.rank() {
				p.Status = t.Status
			}
			p.Types = append(p.Types, t)
		}
		st.mu.Unlock()
		if len(p.Types) == 0 {
			p.Status = NotSent
		}
		slices.SortFunc(p.Types, func(a, b TypeStatus) int { return cmp.Compare(a.TypeURL, b.TypeURL) })
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int {
		return cmp.Or(cmp.Compare(a.NodeID, b.NodeID), cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Stream, b.Stream))
	})
	return out
}

// Rejections returns the most recent refused streams, oldest first.
func (s *Server) Rejections() []Rejection {
	s.streams.rejMu.Lock()
	defer s.streams.rejMu.Unlock()
	return slices.Clone(s.streams.rejections)
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
