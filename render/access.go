package render

import (
	"crypto/sha256"
	"encoding/hex"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/internal/sorted"
)

// Any is the resource's deterministic bytes for xDS, marshalled once: the
// server sends exactly what render hashed.
func (r *Resource) Any() *anypb.Any { return r.served.Any }

// Types returns the type URLs the proxy has resources of, sorted.
func (p *Proxy) Types() []string {
	if p.shared == nil {
		return sortedTypes(p.own)
	}
	all := map[string][]*Resource{}
	for t, rs := range p.shared.byType {
		all[t] = rs
	}
	for t, rs := range p.own {
		if len(rs) > 0 {
			all[t] = rs
		}
	}
	return sortedTypes(all)
}

// Proxy is everything one proxy class receives.
type Proxy struct {
	// Class is the proxy class name, like "sidecar/default/reviews/v2".
	Class string
	// Kind is "sidecar", "proxyless", "ingress" or "egress".
	Kind string

	*content
}

// content is what a proxy class receives; the classes of a service's
// versions share one.
type content struct {
	// shared is the layer the proxy receives whole, or nil.
	shared *Layer
	// own holds the proxy's resources that are not in shared.
	own     map[string][]*Resource
	version string
	// cfg is the same content as the xDS server serves it.
	cfg *snapshot.ClassConfig
}

// Config returns the proxy's config as the xDS server serves it (the
// bundle's Update holds the same object).
func (p *Proxy) Config() *snapshot.ClassConfig { return p.cfg }

// Resources returns the proxy's resources of one type URL, sorted by name:
// its layer's and its own, merged (allocating when both exist).
func (p *Proxy) Resources(typeURL string) []*Resource {
	if p.shared == nil {
		return p.own[typeURL]
	}
	return sorted.Merge(p.shared.byType[typeURL], p.own[typeURL], func(r *Resource) string { return r.Name })
}

// Shared returns the layer of resources the proxy shares whole with other
// classes, or nil. Servers index and encode it once for all of them.
func (p *Proxy) Shared() *Layer { return p.shared }

// Own returns the proxy's resources of one type URL that are not in its
// Shared layer, sorted by name.
func (p *Proxy) Own(typeURL string) []*Resource { return p.own[typeURL] }

// Names returns the sorted names of the proxy's resources of one type URL,
// which is what a client subscribing to everything would ask for.
func (p *Proxy) Names(typeURL string) []string {
	rs := p.Resources(typeURL)
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

// Version is a hash over every resource name and version of the proxy, so a
// server can tell in one comparison whether a proxy's config changed. A
// proxy with a layer hashes the layer's digest instead of its entries, so
// the same content split differently between layer and proxy may hash
// differently: a false "changed" costs a re-send, never a stale config.
func (p *Proxy) Version() string { return p.version }

// proxyVersion computes Version once, when the proxy is finished.
func proxyVersion(shared *Layer, own map[string][]*Resource) string {
	h := sha256.New()
	if shared != nil {
		h.Write([]byte("layer\x00"))
		h.Write(shared.digest[:])
	}
	writeEntries(h, own)
	return hex.EncodeToString(h.Sum(nil))[:16]
}
