package adsload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

const (
	sotwMethod  = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
	deltaMethod = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
)

// typeState is one stream's subscription and holdings of one type.
type typeState struct {
	requested bool
	// names is the current subscription, sorted; nil while wildcard.
	names    []string
	wildcard bool
	// version and nonce of the last response, echoed by the next request
	// (SotW ignores a request whose nonce is not the latest).
	version, nonce string
	// held is everything held, sorted by name: the last SotW response, or
	// what delta responses added and did not remove. A sorted slice costs
	// 8 bytes per resource; a map would cost ~50, times 9,000 resources
	// times 1,000 streams in the unscoped case.
	held []*entry
	sum  uint64 // sum of held entries' hashes
}

// find returns name's position in held, or where it would go.
func (ts *typeState) find(name string) (int, bool) {
	return slices.BinarySearchFunc(ts.held, name, func(e *entry, n string) int { return strings.Compare(e.name, n) })
}

// put adds or replaces e (delta).
func (ts *typeState) put(e *entry) {
	i, ok := ts.find(e.name)
	if ok {
		ts.sum -= ts.held[i].hash
		ts.held[i] = e
	} else {
		ts.held = slices.Insert(ts.held, i, e)
	}
	ts.sum += e.hash
}

// drop removes name (delta).
func (ts *typeState) drop(name string) {
	if i, ok := ts.find(name); ok {
		ts.sum -= ts.held[i].hash
		ts.held = slices.Delete(ts.held, i, i+1)
	}
}

// resum recomputes sum from held.
func (ts *typeState) resum() {
	ts.sum = 0
	for _, e := range ts.held {
		ts.sum += e.hash
	}
}

// sotwIncremental reports whether SotW responses of type t may carry only
// changed resources: every type but listeners (0) and clusters (2).
func sotwIncremental(t int) bool { return t != 0 && t != 2 }

// mergeHeld returns held (sorted) with the entries of in (sorted, unique)
// added or replacing those of the same name.
func mergeHeld(held, in []*entry) []*entry {
	out := make([]*entry, 0, len(held)+len(in))
	i, j := 0, 0
	for i < len(held) || j < len(in) {
		switch {
		case j == len(in) || (i < len(held) && held[i].name < in[j].name):
			out = append(out, held[i])
			i++
		case i == len(held) || in[j].name < held[i].name:
			out = append(out, in[j])
			j++
		default:
			out = append(out, in[j])
			i++
			j++
		}
	}
	return out
}

// stream is one simulated proxy: one ADS stream that ACKs everything and
// subscribes to what its resources reference.
type stream struct {
	d     *Driver
	i     int
	spec  Stream
	st    grpc.ClientStream
	types [4]typeState
	sent  bool // the node went out on the first request

	phase                     int
	synced                    bool
	responses, resources, out int
}

// run opens the stream and follows it until ctx ends; a stream the server
// ends (Unavailable before the first Apply, for one) is reopened after a
// short pause, as a proxy would.
func (s *stream) run(ctx context.Context, conn *grpc.ClientConn) {
	method := sotwMethod
	if s.d.cfg.Delta {
		method = deltaMethod
	}
	for ctx.Err() == nil {
		err := s.session(ctx, conn, method)
		if ctx.Err() != nil {
			return
		}
		s.d.report(Event{Stream: s.i, Phase: s.phase, At: time.Now(), Err: err})
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *stream) session(ctx context.Context, conn *grpc.ClientConn, method string) error {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method,
		grpc.ForceCodecV2(rawCodec{delta: s.d.cfg.Delta}), grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		return fmt.Errorf("stream %d: open: %w", s.i, err)
	}
	s.st, s.sent, s.types = st, false, [4]typeState{}
	// Envoy asks for clusters, then listeners; grpc-go for its listeners.
	if s.spec.Mode == Envoy {
		for _, t := range []int{2, 0} {
			if err := s.subscribe(t, nil, true); err != nil {
				return err
			}
		}
	} else if err := s.subscribe(0, sortedUnique(slices.Clone(s.spec.Listeners)), false); err != nil {
		return err
	}
	for {
		var r rawResponse
		if err := st.RecvMsg(&r); err != nil {
			return fmt.Errorf("stream %d (%s): %w", s.i, s.spec.Node, err)
		}
		err := s.handle(&r)
		r.release()
		if err != nil {
			return err
		}
	}
}

// handle takes one response in: update holdings, ACK, adjust the
// subscriptions it changes, then check whether the stream is in sync.
func (s *stream) handle(r *rawResponse) error {
	phase := s.d.phase()
	if phase.n != s.phase {
		s.phase, s.synced, s.responses, s.resources, s.out = phase.n, false, 0, 0, 0
	}
	s.responses++
	s.resources += len(r.resources) + len(r.removed)
	s.out += r.size
	s.d.count(phase.n, r)
	t := typeIdx(r.typeURL)
	if t < 0 {
		return s.ack(r.typeURL, r, nil)
	}
	ts := &s.types[t]
	ts.version, ts.nonce = r.version, r.nonce
	if s.d.cfg.Delta {
		if len(ts.held) == 0 && len(r.resources) > 1 {
			// The first response of a type brings everything, sorted
			// by the server: take it whole instead of inserting.
			ts.held = make([]*entry, 0, len(r.resources))
			for _, raw := range r.resources {
				ts.held = append(ts.held, s.d.deltaEntry(t, raw))
			}
			ts.held = sortRuns(ts.held)
			ts.held = slices.CompactFunc(ts.held, func(a, b *entry) bool { return a.name == b.name })
			ts.sum = 0
			for _, e := range ts.held {
				ts.sum += e.hash
			}
		} else {
			for _, raw := range r.resources {
				ts.put(s.d.deltaEntry(t, raw))
			}
		}
		for _, name := range r.removed {
			ts.drop(name)
		}
	} else if sotwIncremental(t) && len(ts.held) > 0 {
		// RDS and EDS in SotW carry only what changed (xds_protocol,
		// "Grouping Resources into Responses"): what a response leaves
		// out is kept, as Envoy and grpc-go keep it.
		in := make([]*entry, 0, len(r.resources))
		for _, raw := range r.resources {
			in = append(in, s.d.sotwEntry(t, raw))
		}
		ts.held = mergeHeld(ts.held, sortRuns(in))
		ts.resum()
	} else {
		ts.held, ts.sum = ts.held[:0], 0
		for _, raw := range r.resources {
			e := s.d.sotwEntry(t, raw)
			ts.held = append(ts.held, e)
			ts.sum += e.hash
		}
		if sotwIncremental(t) {
			ts.held = sortRuns(ts.held)
		}
	}
	if err := s.ack(r.typeURL, r, ts); err != nil {
		return err
	}
	if err := s.follow(t); err != nil {
		return err
	}
	var sum uint64
	for k := range s.types {
		sum += s.types[k].sum
	}
	if !s.synced && s.i < len(phase.targets) && sum == phase.targets[s.i] {
		s.synced = true
		s.d.report(Event{Stream: s.i, Phase: s.phase, At: time.Now(),
			Responses: s.responses, Resources: s.resources, Bytes: s.out})
	}
	return nil
}

// follow recomputes the subscriptions that depend on type t.
func (s *stream) follow(t int) error {
	union := func(from []int, pick func(Refs) []string) []string {
		var out []string
		for _, k := range from {
			for _, e := range s.types[k].held {
				out = append(out, pick(e.refs)...)
			}
		}
		return sortedUnique(out)
	}
	if t == 0 {
		routes := union([]int{0}, func(r Refs) []string { return r.Routes })
		if err := s.subscribe(1, routes, false); err != nil {
			return err
		}
	}
	if s.spec.Mode == Proxyless && (t == 0 || t == 1) {
		clusters := union([]int{0, 1}, func(r Refs) []string { return r.Clusters })
		if err := s.subscribe(2, clusters, false); err != nil {
			return err
		}
	}
	if t == 2 {
		eds := union([]int{2}, func(r Refs) []string { return r.Assignments })
		if err := s.subscribe(3, eds, false); err != nil {
			return err
		}
	}
	return nil
}

// subscribe moves type t's subscription to names (sorted) or wildcard,
// sending a request only when it changes.
func (s *stream) subscribe(t int, names []string, wildcard bool) error {
	ts := &s.types[t]
	if ts.requested && (wildcard == ts.wildcard) && slices.Equal(names, ts.names) {
		return nil
	}
	if !ts.requested && !wildcard && len(names) == 0 {
		return nil // nothing to ask for: a proxy sends no request
	}
	var req proto.Message
	if s.d.cfg.Delta {
		add, drop := diffNames(ts.names, names)
		req = &discovery.DeltaDiscoveryRequest{TypeUrl: Types[t], Node: s.node(),
			ResourceNamesSubscribe: add, ResourceNamesUnsubscribe: drop}
	} else {
		req = &discovery.DiscoveryRequest{TypeUrl: Types[t], Node: s.node(), ResourceNames: names,
			VersionInfo: ts.version, ResponseNonce: ts.nonce}
	}
	ts.requested, ts.wildcard, ts.names = true, wildcard, names
	if !s.d.cfg.Delta && sotwIncremental(t) && !wildcard {
		// A SotW client forgets what it no longer names (its removal is
		// told by the listener or cluster that stopped naming it).
		ts.held = slices.DeleteFunc(ts.held, func(e *entry) bool {
			_, ok := slices.BinarySearch(names, e.name)
			return !ok
		})
		ts.resum()
	}
	if err := s.st.SendMsg(req); err != nil {
		return fmt.Errorf("stream %d: subscribe %s: %w", s.i, Types[t], err)
	}
	return nil
}

// ack accepts a response; a SotW ACK repeats the current subscription.
func (s *stream) ack(typeURL string, r *rawResponse, ts *typeState) error {
	var req proto.Message
	if s.d.cfg.Delta {
		req = &discovery.DeltaDiscoveryRequest{TypeUrl: typeURL, Node: s.node(), ResponseNonce: r.nonce}
	} else {
		var names []string
		if ts != nil {
			names = ts.names
		}
		req = &discovery.DiscoveryRequest{TypeUrl: typeURL, Node: s.node(), ResourceNames: names,
			VersionInfo: r.version, ResponseNonce: r.nonce}
	}
	if err := s.st.SendMsg(req); err != nil {
		return fmt.Errorf("stream %d: ack %s: %w", s.i, typeURL, err)
	}
	return nil
}

// node is sent on a stream's first request only, as Envoy does.
func (s *stream) node() *core.Node {
	if s.sent {
		return nil
	}
	s.sent = true
	return &core.Node{Id: s.spec.Node}
}

// diffNames returns what is in next but not prev, and the reverse; both
// inputs are sorted.
func diffNames(prev, next []string) (add, drop []string) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case j == len(next) || (i < len(prev) && prev[i] < next[j]):
			drop = append(drop, prev[i])
			i++
		case i == len(prev) || next[j] < prev[i]:
			add = append(add, next[j])
			j++
		default:
			i++
			j++
		}
	}
	return add, drop
}

// sotwEntry recognises a SotW resource by its bytes; its version is the
// one render gives it (the sha256 of those bytes), so digests agree.
func (d *Driver) sotwEntry(t int, raw rawResource) *entry {
	return d.sotw[t].get(raw.value, func() *entry {
		sum := sha256.Sum256(raw.value)
		e := &entry{name: firstString(raw.value), version: hex.EncodeToString(sum[:8])}
		e.hash = EntryHash(Types[t], e.name, e.version)
		if d.needRefs(t) {
			e.refs, e.err = RefsOf(Types[t], raw.value)
		}
		return e
	})
}

// deltaEntry recognises a delta resource by name and version.
func (d *Driver) deltaEntry(t int, raw rawResource) *entry {
	return d.delta[t].getNamed(raw.name, raw.version, func() *entry {
		e := &entry{name: string(raw.name), version: string(raw.version)}
		e.hash = EntryHash(Types[t], e.name, e.version)
		if d.needRefs(t) {
			e.refs, e.err = RefsOf(Types[t], raw.value)
		}
		return e
	})
}

// needRefs says whether resources of type t must be decoded for their
// references: route configurations only when some stream is proxyless (it
// subscribes to clusters by name); decoding each unscoped sidecar's 450 KB
// route configuration for nothing was most of the client's CPU.
func (d *Driver) needRefs(t int) bool {
	return t == 0 || t == 2 || (t == 1 && d.proxyless)
}

func byName(a, b *entry) int { return strings.Compare(a.name, b.name) }

// sortRuns sorts es by name. A layered class's full response is two sorted
// runs (the shared part, then the class's own), which are merged in one
// pass instead of sorting 9,000 entries per stream.
func sortRuns(es []*entry) []*entry {
	i := 1
	for i < len(es) && es[i-1].name <= es[i].name {
		i++
	}
	if i == len(es) {
		return es
	}
	a, b := es[:i], es[i:]
	if !slices.IsSortedFunc(b, byName) {
		slices.SortFunc(es, byName)
		return es
	}
	out := make([]*entry, 0, len(es))
	for len(a) > 0 || len(b) > 0 {
		if len(b) == 0 || (len(a) > 0 && a[0].name <= b[0].name) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}
