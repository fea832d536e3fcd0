package xds

import (
	"context"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// Markers kept in a subscription's ReturnedResources. They start with a NUL
// byte, which no xDS resource name contains, and are never sent to clients.
const (
	// wildcardKey holds the version of the last wildcard SotW response: a
	// stream that ACKs (or NACKs) it while the class is unchanged is not
	// answered again. This is what stops the NACK storm of go-control-plane
	// #962: a rejected version is never re-sent, the stream waits for a new one.
	wildcardKey = "\x00gitmesh/wildcard"
	// syncedKey holds the class type version a delta subscription was last
	// brought in line with, so a plain ACK costs O(1) instead of a comparison
	// of every resource.
	syncedKey = "\x00gitmesh/synced"
	// baseKey holds the version of the shared part of the class's type
	// (ClassConfig.Shared) a wildcard delta subscription holds whole: its
	// thousands of names are not copied into every stream's map. Names
	// in the map override it; a stream holds no explicit entry for a
	// shared name once in sync.
	baseKey = "\x00gitmesh/base"
)

// isMarker reports whether a ReturnedResources key is one of ours.
func isMarker(name string) bool { return name == wildcardKey || name == syncedKey || name == baseKey }

// servingCache is the go-control-plane cache.Cache over the server's
// classes. It answers each watch with exactly the resources the stream
// subscribes to (never withholding a response because the class holds more,
// the ADS stall of the snapshot cache) and decides "changed or not" from the
// versions the stream already received, not from the request's version.
type servingCache struct{ s *Server }

var _ cache.Cache = servingCache{}

// watch is one waiting request of one stream for one type. It is one-shot:
// once it has responded it is dropped, and the server opens a new watch on
// the stream's next request.
type watch struct {
	typeURL string
	sub     cache.Subscription

	req *discovery.DiscoveryRequest
	ch  chan cache.Response

	dreq *discovery.DeltaDiscoveryRequest
	dch  chan cache.DeltaResponse

	s *Server
}

// CreateWatch answers a SotW request at once if the stream lacks something,
// or parks it until an Apply changes what it subscribes to.
func (c servingCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	cs, err := c.s.lookupClass(req.GetNode().GetId())
	if err != nil {
		return nil, err
	}
	w := &watch{typeURL: req.GetTypeUrl(), sub: sub, req: req, ch: ch, s: c.s}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	force := req.GetResponseNonce() == "" // a stream's first request is always answered
	if resp := sotwFor(cs.index(w.typeURL), req, sub, force, c.s.current()); resp != nil {
		w.send(resp, nil)
		return func() {}, nil
	}
	return cs.park(w), nil
}

// CreateDeltaWatch answers a delta request with the resources the stream
// lacks or parks it until an Apply changes one of them.
func (c servingCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	cs, err := c.s.lookupClass(req.GetNode().GetId())
	if err != nil {
		return nil, err
	}
	// Each request's lists are checked (checkDelta); what a subscription
	// adds up to over many requests is checked here.
	if n := len(sub.SubscribedResources()); n > MaxResourceNames {
		id := req.GetNode().GetId()
		return nil, refuse(apiv1.ReasonLimit, id, codes.InvalidArgument, "%sthe subscription to %s holds %d names, more than the limit of %d",
			who(id), req.GetTypeUrl(), n, MaxResourceNames)
	}
	w := &watch{typeURL: req.GetTypeUrl(), sub: sub, dreq: req, dch: ch, s: c.s}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	idx := cs.index(w.typeURL)
	returned := sub.ReturnedResources()
	plainAck := req.GetResponseNonce() != "" && len(req.GetResourceNamesSubscribe()) == 0 && len(req.GetResourceNamesUnsubscribe()) == 0
	if plainAck && returned[syncedKey] == idx.version {
		return cs.park(w), nil
	}
	res, removed, err := deltaFull(idx, sub, req.GetResourceNamesSubscribe(), func(version string) *typeIndex { return c.s.bases.lookup(w.typeURL, version) })
	if err != nil {
		return nil, err
	}
	returned[syncedKey] = idx.version
	first := req.GetResponseNonce() == "" && sub.IsWildcard() // Envoy waits for it to finish init
	if len(res) > 0 || len(removed) > 0 || first {
		w.send(nil, newDeltaResponse(req, res, removed, returned, c.s.current()))
		return func() {}, nil
	}
	return cs.park(w), nil
}

// Fetch answers a REST (polling) request with the full subscribed state.
func (c servingCache) Fetch(_ context.Context, req *cache.Request) (cache.Response, error) {
	cs, err := c.s.lookupClass(req.GetNode().GetId())
	if err != nil {
		return nil, err
	}
	sub := stream.NewSotwSubscription(req.GetResourceNames(), true)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return sotwFor(cs.index(req.GetTypeUrl()), req, &sub, true, c.s.current()), nil
}

// park registers w on its class and returns its cancel function. Cancel
// takes the class lock, so once it returns no Apply can answer w any more:
// go-control-plane closes the delta response channel right after.
func (cs *classState) park(w *watch) func() {
	ws := cs.watches[w.typeURL]
	if ws == nil {
		ws = map[*watch]struct{}{}
		cs.watches[w.typeURL] = ws
	}
	ws[w] = struct{}{}
	return func() {
		cs.mu.Lock()
		delete(cs.watches[w.typeURL], w)
		cs.mu.Unlock()
	}
}

// wake is called by Apply, under the class lock, with the class's new index
// and what changed since the watch was parked (a parked watch is, by
// construction, in sync with the previous index). It reports whether the
// watch responded.
func (w *watch) wake(prev, idx *view, d typeDiff, revision string) bool {
	if w.ch != nil {
		if !w.sub.IsWildcard() && incremental(w.typeURL) {
			resp := sotwWake(prev, idx, w.req, w.sub, d, revision)
			if resp == nil {
				return false
			}
			w.send(resp, nil)
			return true
		}
		if !w.sub.IsWildcard() && !touches(w.sub.SubscribedResources(), d) {
			return false
		}
		w.send(sotwFor(idx, w.req, w.sub, true, revision), nil)
		return true
	}
	res, removed := deltaWake(idx, d, w.sub)
	if len(res) == 0 && len(removed) == 0 {
		return false
	}
	w.send(nil, newDeltaResponse(w.dreq, res, removed, w.sub.ReturnedResources(), revision))
	return true
}

// touches reports whether a diff concerns any of the subscribed names.
func touches(subscribed map[string]struct{}, d typeDiff) bool {
	for _, r := range d.changed {
		if _, ok := subscribed[r.GetName()]; ok {
			return true
		}
	}
	for _, name := range d.removed {
		if _, ok := subscribed[name]; ok {
			return true
		}
	}
	return false
}

// send hands a response to the stream without blocking: go-control-plane
// reads the channel from the goroutine that may be calling us.
func (w *watch) send(r cache.Response, d cache.DeltaResponse) {
	var ok bool
	if r != nil {
		select {
		case w.ch <- r:
			ok = true
		default:
		}
	} else {
		select {
		case w.dch <- d:
			ok = true
		default:
		}
	}
	if !ok {
		w.s.metrics.dropped.Inc()
		w.s.log.Error("xds response dropped", "type", w.typeURL, "err", errFull)
	}
}

// incremental reports whether SotW responses of typeURL may carry only the
// resources that changed. The xDS protocol ("Grouping Resources into
// Responses", api-docs/xds_protocol) groups every type except Listener and
// Cluster in SotW as in the incremental variants: a resource left out of a
// response is unchanged, not removed (its removal is implied by the
// listener or cluster that stops naming it). Listener and Cluster responses
// must carry the complete state of the world. Envoy's gRPC mux and grpc-go's
// xDS client (AllResourcesRequiredInSotW false for RDS and EDS) both hold
// on to what a response leaves out.
func incremental(typeURL string) bool {
	return typeURL != resource.ListenerType && typeURL != resource.ClusterType
}

// sotwFor builds the SotW response a subscription should receive from idx,
// or nil when the stream already has exactly that (and force is false).
// A named subscription of an incremental type is answered by sotwNamed.
func sotwFor(idx *view, req *discovery.DiscoveryRequest, sub cache.Subscription, force bool, revision string) *sotwResponse {
	returned := sub.ReturnedResources()
	if sub.IsWildcard() {
		if !force && returned[wildcardKey] == idx.version {
			return nil
		}
		return newSotwResponse(req, idx.version, idx.anys(), map[string]string{wildcardKey: idx.version}, revision)
	}
	if incremental(req.GetTypeUrl()) {
		return sotwNamed(idx, req, sub, force, revision)
	}
	subscribed := sub.SubscribedResources()
	type hit struct {
		r *Resource
		a *anypb.Any
	}
	var found []hit
	eachSubscribed(idx, subscribed, func(r *Resource, a *anypb.Any) { found = append(found, hit{r, a}) })
	if !force && len(found) == len(returned) {
		same := true
		for _, h := range found {
			if returned[h.r.Name] != h.r.Version {
				same = false
				break
			}
		}
		if same {
			return nil
		}
	}
	if len(found) == idx.len() {
		// Subscribed to all of them: share the class's slices, so
		// sharedCodec can share their encoding too.
		return newSotwResponse(req, idx.version, idx.anys(), returnedOf(idx), revision)
	}
	anys := make([]*anypb.Any, len(found))
	next := make(map[string]string, len(found))
	var sum uint64
	for k, h := range found {
		anys[k] = h.a
		next[h.r.Name] = h.r.Version
		sum += entryHash(h.r.Name, h.r.Version)
	}
	return newSotwResponse(req, versionOf(sum), anys, next, revision)
}

// eachSubscribed calls fn for every resource of v the subscription names:
// by walking the view's sorted parts when it names most of them (Envoy's
// EDS and RDS name every one of their class), so no name is searched for
// and nothing is sorted; by looking each name up otherwise, in name order.
func eachSubscribed(v *view, subscribed map[string]struct{}, fn func(r *Resource, a *anypb.Any)) {
	if 4*len(subscribed) >= v.len() {
		v.each(func(r *Resource, a *anypb.Any) {
			if _, ok := subscribed[r.Name]; ok {
				fn(r, a)
			}
		})
		return
	}
	names := make([]string, 0, len(subscribed))
	for name := range subscribed {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if r, d, ok := v.find(name); ok {
			fn(r, d.GetResource())
		}
	}
}

// A named SotW subscription of an incremental type (Envoy's RDS and EDS)
// keeps one entry in ReturnedResources, not one per name: the view version
// it was last brought in line with and a hash of the names it then
// subscribed to. One per name was a map of every EDS name per stream:
// 92 MB of the converged heap at 500 unscoped services and streams, four
// times that at 1,000, and a new map per response. The entry is stored under one of the subscribed names (the
// map's key), because go-control-plane deletes from the map, on every
// request, the keys the request does not name; its value starts with
// syncPrefix, which no version has.
const syncPrefix = "\x00gitmesh/sotw:"

// nameSeed seeds nameSetHash. The sync entry lives and dies with one
// stream of one process, so its hash need not agree across replicas and
// can be maphash (FNV here was 15% of SotW serving CPU: every ACK hashes
// thousands of names).
var nameSeed = maphash.MakeSeed()

// nameSetHash is an order-independent hash of a set of names.
func nameSetHash(names map[string]struct{}) uint64 {
	var sum uint64
	for name := range names {
		sum += maphash.String(nameSeed, name)
	}
	return sum
}

// readSync returns the sync entry of a named subscription's map.
func readSync(returned map[string]string) (version string, names uint64, ok bool) {
	if len(returned) != 1 {
		return "", 0, false
	}
	for _, v := range returned {
		rest, found := strings.CutPrefix(v, syncPrefix)
		if !found {
			return "", 0, false
		}
		version, hash, found := strings.Cut(rest, "/")
		n, err := strconv.ParseUint(hash, 16, 64)
		return version, n, found && err == nil
	}
	return "", 0, false
}

// writeSync makes the sync entry the map's only one (in place: see
// deltaWake for why that is safe). With no name subscribed there is
// nothing to hold and nowhere to keep it.
func writeSync(returned map[string]string, subscribed map[string]struct{}, version string, names uint64) {
	clear(returned)
	for name := range subscribed {
		returned[name] = syncPrefix + version + "/" + strconv.FormatUint(names, 16)
		return
	}
}

// sotwNamed is sotwFor for a named subscription of an incremental type.
// A stream in sync with the view over the same names gets nothing; one
// that names new resources, or missed an Apply between a response and
// its ACK, gets everything it names (what it held is not known in
// detail; before the sync entry the answer was the same full response).
func sotwNamed(idx *view, req *discovery.DiscoveryRequest, sub cache.Subscription, force bool, revision string) *sotwResponse {
	returned := sub.ReturnedResources()
	subscribed := sub.SubscribedResources()
	names := namesHash(sub)
	if version, held, ok := readSync(returned); ok && !force && held == names && version == idx.version {
		return nil
	}
	var anys []*anypb.Any
	if s, ok := sub.(*sotwSub); ok && s.set.covers(idx) {
		anys = idx.anys() // what eachSubscribed would list, known without a walk
	} else {
		eachSubscribed(idx, subscribed, func(_ *Resource, a *anypb.Any) { anys = append(anys, a) })
		if len(anys) == idx.len() {
			anys = idx.anys() // all of it: share the class's slices (sharedCodec)
		}
	}
	writeSync(returned, subscribed, idx.version, names)
	return newSotwResponse(req, idx.version, anys, returned, revision)
}

// sotwWake is wake for a named SotW subscription of an incremental type:
// the response carries only the subscribed resources the diff changed, so
// a one-resource change costs O(changed) per stream, not O(subscribed). A
// parked stream is in sync with prev; removed names need no response (in
// SotW their removal is told by the listener or cluster that stops naming
// them).
func sotwWake(prev, v *view, req *discovery.DiscoveryRequest, sub cache.Subscription, d typeDiff, revision string) *sotwResponse {
	returned := sub.ReturnedResources()
	subscribed := sub.SubscribedResources()
	version, names, ok := readSync(returned)
	if !ok || version != prev.version {
		if len(subscribed) == 0 {
			return nil
		}
		return sotwNamed(v, req, sub, true, revision)
	}
	var anys []*anypb.Any
	for _, w := range d.changed {
		if _, ok := subscribed[w.GetName()]; ok {
			anys = append(anys, w.GetResource())
		}
	}
	writeSync(returned, subscribed, v.version, names)
	if len(anys) == 0 {
		return nil
	}
	return newSotwResponse(req, v.version, anys, returned, revision)
}

func returnedOf(idx *view) map[string]string {
	m := make(map[string]string, idx.len())
	idx.each(func(r *Resource, _ *anypb.Any) { m[r.Name] = r.Version })
	return m
}

func newDeltaResponse(req *discovery.DeltaDiscoveryRequest, res []*discovery.Resource, removed []string, returned map[string]string, revision string) *deltaResponse {
	return &deltaResponse{
		req: req,
		out: &discovery.DeltaDiscoveryResponse{
			SystemVersionInfo: revision,
			Resources:         res,
			RemovedResources:  removed,
			TypeUrl:           req.GetTypeUrl(),
		},
		returned: returned,
	}
}

// lookupClass maps a node id to its served class.
func (s *Server) lookupClass(nodeID string) (*classState, error) {
	class, err := s.classOf(nodeID)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	cs := s.classes[class]
	s.mu.RUnlock()
	if cs == nil {
		return nil, status.Errorf(codes.NotFound, "unknown proxy class %q of node %q", class, nodeID)
	}
	return cs, nil
}
