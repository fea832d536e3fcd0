package xds

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// baseRef is a shared part a class's view gains or loses in an Apply.
type baseRef struct {
	typeURL string
	idx     *typeIndex
}

// retainBase is how long a shared part no class serves any more stays
// known: a delta stream's base marker is brought up to date by every
// response and every wake, so it can only lag by the time one response of
// its takes to be ACKed, and a response built before an Apply may still be
// on its way out after it.
const retainBase = 2 * time.Minute

// baseRegistry knows the shared parts being served (and, for a while, the
// ones just retired): delta streams resolve their base markers in it, and
// sharedCodec recognises a response that starts with one. Apply updates it
// with the parts the changed classes gained and lost, so a one-class
// change costs O(1) here, not O(classes).
type baseRegistry struct {
	mu        sync.RWMutex
	entries   map[*typeIndex]*baseEntry
	byVersion map[versionKey]*typeIndex
	anys      map[*anypb.Any][]*baseEntry
	deltas    map[*discovery.Resource][]*baseEntry
	retired   map[*baseEntry]bool
}

type versionKey struct{ typeURL, version string }

type baseEntry struct {
	ref     baseRef
	classes int       // classes whose current view has it
	retired time.Time // when classes dropped to 0
	// anySize and deltaSize cache the encoded size of the part as a
	// response's resources, plus one (0: not computed yet).
	anySize, deltaSize atomic.Int64
}

// update counts the parts gained and lost by an Apply's changed classes
// and forgets parts retired longer than retainBase.
func (r *baseRegistry) update(gained, lost []baseRef, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries == nil {
		r.entries, r.byVersion = map[*typeIndex]*baseEntry{}, map[versionKey]*typeIndex{}
		r.anys, r.deltas = map[*anypb.Any][]*baseEntry{}, map[*discovery.Resource][]*baseEntry{}
		r.retired = map[*baseEntry]bool{}
	}
	for _, b := range gained {
		e := r.entries[b.idx]
		if e == nil {
			e = &baseEntry{ref: b}
			r.entries[b.idx] = e
			r.byVersion[versionKey{b.typeURL, b.idx.version}] = b.idx
			if len(b.idx.list) >= minShared {
				r.anys[b.idx.anys[0]] = append(r.anys[b.idx.anys[0]], e)
				r.deltas[b.idx.deltas[0]] = append(r.deltas[b.idx.deltas[0]], e)
			}
		}
		e.classes++
		delete(r.retired, e)
	}
	for _, b := range lost {
		if e := r.entries[b.idx]; e != nil {
			if e.classes--; e.classes == 0 {
				e.retired = now
				r.retired[e] = true
			}
		}
	}
	for e := range r.retired {
		if now.Sub(e.retired) > retainBase {
			r.forget(e)
		}
	}
}

// forget drops a retired entry from every index; r.mu is held.
func (r *baseRegistry) forget(e *baseEntry) {
	idx := e.ref.idx
	delete(r.retired, e)
	delete(r.entries, idx)
	if k := (versionKey{e.ref.typeURL, idx.version}); r.byVersion[k] == idx {
		delete(r.byVersion, k)
	}
	if len(idx.list) >= minShared {
		r.anys[idx.anys[0]] = dropEntry(r.anys[idx.anys[0]], e)
		if len(r.anys[idx.anys[0]]) == 0 {
			delete(r.anys, idx.anys[0])
		}
		r.deltas[idx.deltas[0]] = dropEntry(r.deltas[idx.deltas[0]], e)
		if len(r.deltas[idx.deltas[0]]) == 0 {
			delete(r.deltas, idx.deltas[0])
		}
	}
}

func dropEntry(es []*baseEntry, e *baseEntry) []*baseEntry {
	return slices.DeleteFunc(es, func(x *baseEntry) bool { return x == e })
}

// lookup returns the shared part of typeURL with version, or nil.
func (r *baseRegistry) lookup(typeURL, version string) *typeIndex {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byVersion[versionKey{typeURL, version}]
}

// anyRun returns the longest known shared part res starts with, or nil.
func (r *baseRegistry) anyRun(res []*anypb.Any) []*anypb.Any {
	if e := r.anyEntry(res); e != nil {
		return e.ref.idx.anys
	}
	return nil
}

func (r *baseRegistry) anyEntry(res []*anypb.Any) *baseEntry {
	if r == nil || len(res) < minShared {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var best *baseEntry
	for _, e := range r.anys[res[0]] {
		c := e.ref.idx.anys
		if len(c) <= len(res) && (best == nil || len(c) > len(best.ref.idx.anys)) && slices.Equal(c, res[:len(c)]) {
			best = e
		}
	}
	return best
}

// deltaRun returns the longest known shared part res starts with, or nil.
func (r *baseRegistry) deltaRun(res []*discovery.Resource) []*discovery.Resource {
	if e := r.deltaEntry(res); e != nil {
		return e.ref.idx.deltas
	}
	return nil
}

func (r *baseRegistry) deltaEntry(res []*discovery.Resource) *baseEntry {
	if r == nil || len(res) < minShared {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var best *baseEntry
	for _, e := range r.deltas[res[0]] {
		c := e.ref.idx.deltas
		if len(c) <= len(res) && (best == nil || len(c) > len(best.ref.idx.deltas)) && slices.Equal(c, res[:len(c)]) {
			best = e
		}
	}
	return best
}

// sotwSize is proto.Size(resp) with a leading shared part's size computed
// once: the status callbacks measure every response, and walking 9,000
// resources per unscoped response cost as much as building it.
func (r *baseRegistry) sotwSize(resp *discovery.DiscoveryResponse) int {
	e := r.anyEntry(resp.GetResources())
	if e == nil {
		return proto.Size(resp)
	}
	run := e.ref.idx.anys
	n := e.anySize.Load() - 1
	if n < 0 {
		n = int64(proto.Size(&discovery.DiscoveryResponse{Resources: run}))
		e.anySize.Store(n + 1)
	}
	return int(n) + proto.Size(&discovery.DiscoveryResponse{VersionInfo: resp.VersionInfo, Resources: resp.Resources[len(run):],
		Canary: resp.Canary, TypeUrl: resp.TypeUrl, Nonce: resp.Nonce, ControlPlane: resp.ControlPlane})
}

// deltaSize is sotwSize for delta responses.
func (r *baseRegistry) deltaSize(resp *discovery.DeltaDiscoveryResponse) int {
	e := r.deltaEntry(resp.GetResources())
	if e == nil {
		return proto.Size(resp)
	}
	run := e.ref.idx.deltas
	n := e.deltaSize.Load() - 1
	if n < 0 {
		n = int64(proto.Size(&discovery.DeltaDiscoveryResponse{Resources: run}))
		e.deltaSize.Store(n + 1)
	}
	return int(n) + proto.Size(&discovery.DeltaDiscoveryResponse{SystemVersionInfo: resp.SystemVersionInfo,
		Resources: resp.Resources[len(run):], TypeUrl: resp.TypeUrl, RemovedResources: resp.RemovedResources,
		RemovedResourceNames: resp.RemovedResourceNames, Nonce: resp.Nonce, ControlPlane: resp.ControlPlane,
		ResourceErrors: resp.ResourceErrors})
}

// baseChanges lists the shared parts the planned classes gain and lose.
func baseChanges(plans []classPlan) (gained, lost []baseRef) {
	for _, p := range plans {
		for typeURL, v := range p.types {
			if len(v.base.list) > 0 {
				gained = append(gained, baseRef{typeURL, v.base})
			}
		}
		for typeURL, v := range p.cs.types { // still the old views
			if len(v.base.list) > 0 {
				lost = append(lost, baseRef{typeURL, v.base})
			}
		}
	}
	return gained, lost
}
