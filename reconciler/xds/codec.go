package xds

import (
	"fmt"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
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

// Unmarshal decodes requests with gRPC's proto codec.
func (c *sharedCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.base.Unmarshal(data, v) }

// Marshal encodes v, sharing the body of large shared responses.
func (c *sharedCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		if len(m.GetResources()) >= minShared {
			k := bodyKey{&m.Resources[0], len(m.Resources), m.GetVersionInfo(), m.GetTypeUrl()}
			body, err := c.body(k, &discovery.DiscoveryResponse{VersionInfo: m.VersionInfo, Resources: m.Resources, TypeUrl: m.TypeUrl})
			if err != nil || body == nil {
				break
			}
			return c.withTail(body, &discovery.DiscoveryResponse{Canary: m.Canary, Nonce: m.Nonce, ControlPlane: m.ControlPlane})
		}
	case *discovery.DeltaDiscoveryResponse:
		if len(m.GetResources()) >= minShared {
			k := bodyKey{&m.Resources[0], len(m.Resources), m.GetSystemVersionInfo(), m.GetTypeUrl()}
			body, err := c.body(k, &discovery.DeltaDiscoveryResponse{SystemVersionInfo: m.SystemVersionInfo, Resources: m.Resources, TypeUrl: m.TypeUrl})
			if err != nil || body == nil {
				break
			}
			return c.withTail(body, &discovery.DeltaDiscoveryResponse{RemovedResources: m.RemovedResources,
				RemovedResourceNames: m.RemovedResourceNames, Nonce: m.Nonce, ControlPlane: m.ControlPlane})
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.bodies[k]; ok {
		return prev, nil
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
	return b, nil
}
