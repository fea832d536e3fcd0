package xds

import (
	"fmt"
	"hash/maphash"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCodec is gRPC's proto codec with one difference: a response whose
// Resources slice is shared by several streams (a class's wildcard list, a
// full initial delta) is encoded once, and every stream sends the same
// bytes followed by its own few bytes of nonce. Protobuf allows fields in
// any order, so body+tail decodes to the same message.
//
// Without it, grpc-go encodes every Send into a fresh buffer and holds it
// until the peer's flow control drains it: 1,000 unscoped proxies of 4 MB
// each meant 4 GB of identical buffers and as many memcpy passes.
type sharedCodec struct {
	base encoding.CodecV2

	mu     sync.Mutex
	seen   map[bodyKey]bool   // seen once: a second sighting earns a cached body
	bodies map[bodyKey][]byte // cached bodies
	order  []bodyKey          // insertion order, for eviction
	size   int                // bytes in bodies
	budget int

	// runs, when set, names the shared parts of the served views: a
	// response that starts with one (every full response of a layered
	// class does) sends the part's one encoding, whatever class it is for.
	runs *baseRegistry
	// names, when set, returns the intern table of served resource names.
	names func() map[string]string
	// sets holds the decoded name lists of large SotW requests.
	sets nameSetCache
}

// bodyKey identifies a body by the identity of its Resources backing array
// (held by the key, so its address cannot be reused while cached) plus the
// fields encoded with it.
type bodyKey struct {
	first   any // **anypb.Any or **discovery.Resource
	n       int
	version string
	typeURL string
}

// minShared is the smallest Resources list worth caching: below it the
// body is small and copying it is cheaper than the bookkeeping.
const minShared = 8

// maxSeen bounds the set of once-seen keys; per-stream lists (named
// subscriptions) only ever pass through it.
const maxSeen = 4096

func newSharedCodec(budget int) *sharedCodec {
	return &sharedCodec{
		base:   encoding.GetCodecV2(protocodec.Name),
		seen:   map[bodyKey]bool{},
		bodies: map[bodyKey][]byte{},
		budget: budget,
	}
}

// Name is "proto": on the wire nothing differs.
func (c *sharedCodec) Name() string { return protocodec.Name }

// Unmarshal decodes requests with gRPC's proto codec, except that the
// resource names of a large subscription are decoded straight into the
// server's own strings (see Server.intern): Envoy's first EDS and RDS
// requests name every resource of its class, and decoding 1,000 unscoped
// streams' names into fresh strings was half a gigabyte of garbage.
func (c *sharedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var names *[]string
	switch m := v.(type) {
	case *sotwRecv:
		return c.unmarshalSotw(data, m)
	case *discovery.DeltaDiscoveryRequest:
		names = &m.ResourceNamesSubscribe
	case *discovery.DiscoveryRequest:
		names = &m.ResourceNames
	}
	if names == nil || c.names == nil || data.Len() < minIntern*8 {
		return c.base.Unmarshal(data, v)
	}
	// A pooled buffer: nothing decoded keeps a reference to it (names are
	// interned or copied, the rest is unmarshalled from its own copy), and
	// a SotW ACK of an unscoped proxy repeats ~9,000 names every time.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	n := 0
	if eachField(b, func(num protowire.Number, _, _ []byte) { // field 3: resource names in both
		if num == 3 {
			n++
		}
	}) != nil || n < minIntern {
		return c.base.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, v)
	}
	table := c.names()
	list := make([]string, 0, n)
	rest := make([]byte, 0, 256) // the few fields besides the names
	_ = eachField(b, func(num protowire.Number, raw, val []byte) {
		if num != 3 {
			rest = append(rest, raw...)
			return
		}
		if canon, ok := table[string(val)]; ok {
			list = append(list, canon)
		} else {
			list = append(list, string(val))
		}
	})
	if err := proto.Unmarshal(rest, v.(proto.Message)); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	*names = append(list, *names...)
	return nil
}

// sotwRecv is what a SotW ADS stream (sotw.go) receives a request into.
type sotwRecv struct {
	req *discovery.DiscoveryRequest
	// set is the request's names as a shared nameSet, when the list is
	// large enough to be worth one.
	set *nameSet
}

// unmarshalSotw decodes a SotW request. A large name list is looked up by
// its bytes among the lists decoded before (a SotW ACK repeats the whole
// subscription, ~4,000 names for an unscoped Envoy's EDS, and the streams
// of an unscoped mesh all send the same list): when found, the request
// gets that list and its nameSet, neither decoded nor built again.
func (c *sharedCodec) unmarshalSotw(data mem.BufferSlice, r *sotwRecv) error {
	if c.names == nil || data.Len() < minIntern*8 {
		return c.Unmarshal(data, r.req)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	plain := func() error { return c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r.req) }
	// Where the names lie: encoders write fields in order, so they are one
	// run; a request that interleaves them takes the plain path.
	start, end, n := -1, -1, 0
	rest := make([]byte, 0, 256) // the few fields besides the names
	for pos := 0; pos < len(b); {
		num, typ, tn := protowire.ConsumeTag(b[pos:])
		if tn < 0 {
			return plain()
		}
		m := protowire.ConsumeFieldValue(num, typ, b[pos+tn:])
		if m < 0 {
			return plain()
		}
		if num == 3 && typ == protowire.BytesType {
			if start >= 0 && end != pos {
				return plain()
			}
			if start < 0 {
				start = pos
			}
			end, n = pos+tn+m, n+1
		} else {
			rest = append(rest, b[pos:pos+tn+m]...)
		}
		pos += tn + m
	}
	if n < minIntern {
		return plain()
	}
	if err := proto.Unmarshal(rest, r.req); err != nil {
		return fmt.Errorf("decode request: %w", err)
	}
	raw := b[start:end]
	k := nameSetKey{sum: maphash.Bytes(nameSeed, raw), size: len(raw), count: n}
	ns := c.sets.get(k)
	if ns == nil {
		table := c.names()
		list := make([]string, 0, n)
		served := true
		_ = eachField(raw, func(_ protowire.Number, _, val []byte) {
			if canon, ok := table[string(val)]; ok {
				list = append(list, canon)
			} else {
				list = append(list, string(val))
				served = false
			}
		})
		ns = newNameSet(list)
		// Only lists of served names are kept: their strings are the
		// intern table's, so the cache holds no bytes of its own, and
		// a peer cannot fill it with names of its choosing.
		if served && n <= MaxResourceNames {
			ns = c.sets.put(k, ns)
		}
	}
	r.req.ResourceNames, r.set = ns.names, ns
	return nil
}

// eachField calls f with every field of b: its raw bytes (tag included)
// and, for a length-delimited field, its value.
func eachField(b []byte, f func(num protowire.Number, raw, val []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		var val []byte
		if typ == protowire.BytesType {
			val, _ = protowire.ConsumeBytes(b[n:])
		}
		f(num, b[:n+m], val)
		b = b[n+m:]
	}
	return nil
}

// Marshal encodes v, sharing the body of large shared responses.
func (c *sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		if run := c.runs.anyRun(m.GetResources()); run != nil {
			body, err := c.body(bodyKey{first: &run[0], n: len(run), typeURL: "run"}, &discovery.DiscoveryResponse{Resources: run})
			if err != nil {
				return nil, err
			}
			if body != nil {
				// The rest is a shallow envelope: proto.Clone here copied
				// every resource's bytes once per stream (at 1,000
				// unscoped streams, gigabytes of garbage and most of
				// SotW's peak RSS and CPU).
				return c.withTail(body, &discovery.DiscoveryResponse{VersionInfo: m.VersionInfo,
					Resources: m.Resources[len(run):], Canary: m.Canary, TypeUrl: m.TypeUrl,
					Nonce: m.Nonce, ControlPlane: m.ControlPlane, ResourceErrors: m.ResourceErrors})
			}
		}
		if len(m.GetResources()) >= minShared {
			k := bodyKey{&m.Resources[0], len(m.Resources), m.GetVersionInfo(), m.GetTypeUrl()}
			body, err := c.body(k, &discovery.DiscoveryResponse{VersionInfo: m.VersionInfo, Resources: m.Resources, TypeUrl: m.TypeUrl})
			if err != nil {
				return nil, err
			}
			if body != nil {
				return c.withTail(body, &discovery.DiscoveryResponse{Canary: m.Canary, Nonce: m.Nonce, ControlPlane: m.ControlPlane, ResourceErrors: m.ResourceErrors})
			}
		}
		if out, ok, err := c.sotwSegments(m); ok || err != nil {
			return out, err
		}
	case *discovery.DeltaDiscoveryResponse:
		if out, ok, err := c.deltaSegments(m); ok || err != nil {
			return out, err
		}
		if len(m.GetResources()) >= minShared {
			k := bodyKey{&m.Resources[0], len(m.Resources), m.GetSystemVersionInfo(), m.GetTypeUrl()}
			body, err := c.body(k, &discovery.DeltaDiscoveryResponse{SystemVersionInfo: m.SystemVersionInfo, Resources: m.Resources, TypeUrl: m.TypeUrl})
			if err != nil || body == nil {
				break
			}
			return c.withTail(body, &discovery.DeltaDiscoveryResponse{RemovedResources: m.RemovedResources,
				RemovedResourceNames: m.RemovedResourceNames, Nonce: m.Nonce, ControlPlane: m.ControlPlane, ResourceErrors: m.ResourceErrors})
		}
	}
	return c.base.Marshal(v)
}

func (c *sharedCodec) withTail(body []byte, tail proto.Message) (mem.BufferSlice, error) {
	t, err := proto.Marshal(tail)
	if err != nil {
		return nil, fmt.Errorf("marshal response tail: %w", err)
	}
	return mem.BufferSlice{mem.SliceBuffer(body), mem.SliceBuffer(t)}, nil
}

// bigResource is the encoded size from which one resource alone is worth
// caching: an unscoped sidecar's route configuration (~450 KB) that one
// weight edit sends to every stream is encoded once, not once per stream.
const bigResource = 32 << 10

// deltaSegments encodes a delta response as cached pieces: a leading shared
// run, then every big resource, then the rest with the envelope. Resources
// of a delta response may come in any order, and repeated fields encode as
// the concatenation of their elements, so the pieces decode to the same
// set. It reports false when nothing is worth sharing.
func (c *sharedCodec) deltaSegments(m *discovery.DeltaDiscoveryResponse) (mem.BufferSlice, bool, error) {
	res := m.GetResources()
	run := c.runs.deltaRun(res)
	var out mem.BufferSlice
	if run != nil {
		// Like whole lists, a run is cached from its second sighting: a
		// scoped class's part serves one or two streams.
		body, err := c.body(bodyKey{first: &run[0], n: len(run), typeURL: "run"}, &discovery.DeltaDiscoveryResponse{Resources: run})
		if err != nil {
			return nil, false, err
		}
		if body != nil {
			out = append(out, mem.SliceBuffer(body))
			res = res[len(run):]
		}
	}
	var rest []*discovery.Resource
	for _, r := range res {
		if len(r.GetResource().GetValue()) < bigResource {
			rest = append(rest, r)
			continue
		}
		body, err := c.cached(bodyKey{first: r, n: 1, typeURL: "one"}, &discovery.DeltaDiscoveryResponse{Resources: []*discovery.Resource{r}})
		if err != nil {
			return nil, false, err
		}
		out = append(out, mem.SliceBuffer(body))
	}
	if len(out) == 0 {
		return nil, false, nil
	}
	tail, err := proto.Marshal(&discovery.DeltaDiscoveryResponse{SystemVersionInfo: m.SystemVersionInfo, Resources: rest,
		TypeUrl: m.TypeUrl, RemovedResources: m.RemovedResources, RemovedResourceNames: m.RemovedResourceNames,
		Nonce: m.Nonce, ControlPlane: m.ControlPlane, ResourceErrors: m.ResourceErrors})
	if err != nil {
		return nil, false, fmt.Errorf("marshal response tail: %w", err)
	}
	return append(out, mem.SliceBuffer(tail)), true, nil
}

// sotwSegments is deltaSegments for SotW: every big resource is sent as
// its one cached encoding, the rest with the envelope. SotW RDS responses
// carry just the changed route configuration, which a weight edit sends to
// every stream (~450 KB each for 1,000 unscoped sidecars): encoded once,
// not once per stream. Resources of a response may come in any order.
func (c *sharedCodec) sotwSegments(m *discovery.DiscoveryResponse) (mem.BufferSlice, bool, error) {
	var out mem.BufferSlice
	var rest []*anypb.Any
	for _, a := range m.GetResources() {
		if len(a.GetValue()) < bigResource {
			rest = append(rest, a)
			continue
		}
		body, err := c.cached(bodyKey{first: a, n: 1, typeURL: "one"}, &discovery.DiscoveryResponse{Resources: []*anypb.Any{a}})
		if err != nil {
			return nil, false, err
		}
		out = append(out, mem.SliceBuffer(body))
	}
	if len(out) == 0 {
		return nil, false, nil
	}
	tail, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: m.VersionInfo, Resources: rest, Canary: m.Canary,
		TypeUrl: m.TypeUrl, Nonce: m.Nonce, ControlPlane: m.ControlPlane, ResourceErrors: m.ResourceErrors})
	if err != nil {
		return nil, false, fmt.Errorf("marshal response tail: %w", err)
	}
	return append(out, mem.SliceBuffer(tail)), true, nil
}

// cached returns the encoding of m under k, encoding it on first use.
func (c *sharedCodec) cached(k bodyKey, m proto.Message) ([]byte, error) {
	c.mu.Lock()
	if b, ok := c.bodies[k]; ok {
		c.mu.Unlock()
		return b, nil
	}
	c.mu.Unlock()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal shared response body: %w", err)
	}
	return c.keep(k, b), nil
}

// keep caches b under k within the budget and returns the cached body.
func (c *sharedCodec) keep(k bodyKey, b []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.bodies[k]; ok {
		return prev
	}
	delete(c.seen, k)
	c.bodies[k] = b
	c.order = append(c.order, k)
	c.size += len(b)
	for c.size > c.budget && len(c.order) > 1 {
		old := c.order[0]
		c.order = c.order[1:]
		c.size -= len(c.bodies[old])
		delete(c.bodies, old)
	}
	return b
}

// body returns the cached encoding for k, encoding it on its second
// sighting; nil means "encode normally".
func (c *sharedCodec) body(k bodyKey, m proto.Message) ([]byte, error) {
	c.mu.Lock()
	if b, ok := c.bodies[k]; ok {
		c.mu.Unlock()
		return b, nil
	}
	if !c.seen[k] {
		if len(c.seen) >= maxSeen {
			clear(c.seen)
		}
		c.seen[k] = true
		c.mu.Unlock()
		return nil, nil
	}
	c.mu.Unlock()
	// Encoded outside the lock; two streams racing here both encode, which
	// is harmless and rarer than blocking every stream behind one encode.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal shared response body: %w", err)
	}
	return c.keep(k, b), nil
}
