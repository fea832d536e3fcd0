package render

import (
	"crypto/sha256"
	"hash"
	"reflect"
	"slices"
	"sync"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/render/envoystrict"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Incremental render. A Cache carries the resources of one render to the
// next, so an edit re-renders only what it touches: a resource is reused
// when the fingerprint of exactly the model inputs its build reads is the
// one it was built from. Render stays a pure function of its Input: the
// output with a Cache is byte for byte the output without one
// (TestIncrementalMatchesFull), only cheaper to make.
//
// What is cached, and what its fingerprint covers (each call site says it
// again):
//
//   - a mesh service's clusters and their assignments (cluster.go): the
//     service itself, its discovered endpoints and addresses, and the mesh
//     block;
//   - a sidecar's virtualInbound listener and what it depends on
//     (capture.go): the service, the mesh block, and what every service's
//     authorization may name of another (its namespace and service
//     account) and every extension;
//   - a service's virtual host on one port (sidecar.go), the part of a
//     route configuration that is one service's: the service and every
//     service its routes send or mirror to (vhostFP);
//   - a sidecar's outbound route configuration of one port: its virtual
//     hosts (routeConfigFP), when it has no external service.
//
// A sidecar outbound layer is reused whole when it is made of the same
// resources (with their dependencies, in the same order: the same names
// and content versions) as before: then sorting, deduplicating and hashing
// them gives the same layer. Everything else (listeners that read across
// services, the proxies) is built afresh around them. The strict check
// walks only resources it has not walked cleanly before (envoystrict.Memo)
// and runs its class-wide rules afresh.
//
// A reused resource is the previous render's object, shared by pointer
// (resources are immutable once rendered, so the bundle being served and
// the new one can hold it at once). Its build's side effects on the
// builder are replayed so the render around it proceeds exactly as if it
// had been built: the resources it interned (its dependencies), the
// references and routes it noted for diagnostics' positions. The Anys it
// packed are not replayed: the strict check reads a packed Any's message
// instead of unmarshalling it, but it does not walk a reused resource
// again (envoystrict.Memo), and where it does, unmarshalling reads the
// same content.
//
// Only a render that ends without a finding becomes the next base: a
// reused resource was built without a finding, so building it again from
// the same inputs would not report one either.

// Cache keeps what one render built for the next. The reconciler holds one
// for the life of `gitmesh serve`; one-shot commands render without. A
// Cache is safe for concurrent use (renders at once each read the last
// finished base; the last to finish becomes the next base).
type Cache struct {
	mu    sync.Mutex
	base  map[memoKey]*cachedBuild
	vbase map[vhostID]*cachedVHost
	lbase map[string]*cachedLayer
	// strict is what the last kept render's strict check learnt about its
	// resources (envoystrict.Memo): reused resources are not walked again.
	strict *envoystrict.Memo
	// stats of the last render through the cache.
	stats CacheStats
}

// CacheStats says how much of the last render through a Cache was reused.
type CacheStats struct {
	// Reused and Built count the cacheable pieces (resources with their
	// dependencies, virtual hosts, layers) taken from the previous render
	// and built afresh.
	Reused, Built int
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{} }

// Render renders in, reusing what the previous render through c built
// from the same inputs. The result is identical to Render(in).
func (c *Cache) Render(in Input) (*Bundle, error) {
	c.mu.Lock()
	base, vbase, lbase, strict := c.base, c.vbase, c.lbase, c.strict
	c.mu.Unlock()
	inc := &incremental{base: base, next: map[memoKey]*cachedBuild{}, strict: envoystrict.NewMemo(strict),
		vbase: vbase, vnext: map[vhostID]*cachedVHost{}, lbase: lbase, lnext: map[string]*cachedLayer{},
		vhFP: map[*model.Service]string{}}
	bundle, err := render(in, inc)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats = CacheStats{Reused: inc.reused, Built: inc.built}
	if err == nil {
		c.base, c.vbase, c.lbase, c.strict = inc.next, inc.vnext, inc.lnext, inc.strict
	}
	return bundle, err
}

// Stats returns how much of the last render through c was reused.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// incremental is one render's view of a Cache.
type incremental struct {
	base, next map[memoKey]*cachedBuild
	strict     *envoystrict.Memo
	// vbase and vnext are the virtual hosts of services, by vhostID.
	vbase, vnext map[vhostID]*cachedVHost
	// lbase and lnext are the sidecar outbound layers, by outboundKey.
	lbase, lnext map[string]*cachedLayer
	// recording is the stack of builds in progress whose side effects are
	// being written down (a cluster's build interns its assignment).
	recording []*effects
	// fps memoises the fingerprints of this render's inputs; buf is
	// serviceFP's scratch.
	svcFP   map[*model.Service]string
	vhFP    map[*model.Service]string
	buf     []byte
	wbuf    []byte
	meshFP  string
	identFP string

	reused, built int
}

// cachedBuild is one resource as a build left it, with the fingerprint of
// its inputs and the side effects to replay.
type cachedBuild struct {
	fp  string
	r   *Resource
	eff *effects
}

// effects are the builder state a build changed besides its result.
type effects struct {
	memo   []memoEntry
	refs   [][2]string
	routes []routeEntry
}

type memoEntry struct {
	k memoKey
	r *Resource
}

type routeEntry struct {
	rt   *routev3.Route
	path string
}

// top is the innermost recording, or nil.
func (inc *incremental) top() *effects {
	if inc == nil || len(inc.recording) == 0 {
		return nil
	}
	return inc.recording[len(inc.recording)-1]
}

// record runs one build, collecting the side effects it makes (memo
// entries, references, route paths) so a later render can replay them; a
// build nested in another's recording also counts for the outer one.
func (inc *incremental) record(build func()) *effects {
	eff := &effects{}
	inc.recording = append(inc.recording, eff)
	build()
	inc.recording = inc.recording[:len(inc.recording)-1]
	if parent := inc.top(); parent != nil {
		parent.memo = append(parent.memo, eff.memo...)
		parent.refs = append(parent.refs, eff.refs...)
		parent.routes = append(parent.routes, eff.routes...)
	}
	inc.built++
	return eff
}

// internCached is intern for a resource whose content is a function of
// the inputs fp fingerprints (and of key): it reuses the previous render's
// resource when fp is the one it was built from. fp "" means "do not
// cache". See the package comment above for what each caller's fp covers.
func (b *builder) internCached(typeURL, name, key, fp, origin string, build func() (proto.Message, []*Resource)) *Resource {
	inc := b.inc
	k := memoKey{typeURL, key}
	if inc == nil || fp == "" {
		return b.intern(typeURL, name, key, origin, build)
	}
	if r, ok := b.memo[k]; ok {
		return r
	}
	if cb := inc.base[k]; cb != nil && cb.fp == fp {
		b.replay(cb.eff)
		b.memo[k] = cb.r
		if e := inc.top(); e != nil {
			e.memo = append(e.memo, memoEntry{k, cb.r})
		}
		inc.next[k] = cb
		inc.reused++
		return cb.r
	}
	var r *Resource
	eff := inc.record(func() { r = b.intern(typeURL, name, key, origin, build) })
	if r != nil {
		// The resource itself is in eff.memo (intern recorded it); a
		// replay puts it back with its dependencies.
		inc.next[k] = &cachedBuild{fp: fp, r: r, eff: eff}
	}
	return r
}

// replay applies a reused build's side effects in the order the build
// made them. A memo entry the render already has stays: same key, same
// content (the fingerprint covered it), and the render's own object is
// the one the rest of the render shares.
func (b *builder) replay(eff *effects) {
	for _, m := range eff.memo {
		if _, ok := b.memo[m.k]; !ok {
			b.memo[m.k] = m.r
		}
	}
	for _, ref := range eff.refs {
		b.noteRef(ref[0], ref[1])
	}
	for _, rt := range eff.routes {
		b.routeOrigin[rt.rt] = rt.path
	}
	if e := b.inc.top(); e != nil {
		e.memo = append(e.memo, eff.memo...)
		e.refs = append(e.refs, eff.refs...)
		e.routes = append(e.routes, eff.routes...)
	}
}

// Hooks the builder calls where it changes its state, so a recording
// build's side effects can be replayed.

func (inc *incremental) noteMemo(k memoKey, r *Resource) {
	if e := inc.top(); e != nil {
		e.memo = append(e.memo, memoEntry{k, r})
	}
}

func (inc *incremental) noteRef(name, path string) {
	if e := inc.top(); e != nil {
		e.refs = append(e.refs, [2]string{name, path})
	}
}

func (inc *incremental) noteRoute(rt *routev3.Route, path string) {
	if e := inc.top(); e != nil {
		e.routes = append(e.routes, routeEntry{rt, path})
	}
}

// Fingerprints. Each is the SHA-256 of the canonical encoding (fphash.go)
// of exactly the inputs it names: every field of every model value,
// maps in key order.

// serviceFP fingerprints one service for the builds that read only it:
// the service (its name too), the endpoints and addresses discovered for
// it (Input.Endpoints of its versions, Input.Addresses), and the mesh
// block (host names, identities, default mTLS, tracing). "" when it cannot
// be made: then nothing of the service is cached.
func (b *builder) serviceFP(s *model.Service) string {
	inc := b.inc
	if fp, ok := inc.svcFP[s]; ok {
		return fp
	}
	// One buffer for every service: fingerprinting is on every render's
	// path, once per service.
	buf, ok := appendValue(inc.buf[:0], reflect.ValueOf(s.Name))
	buf, ok2 := appendValue(buf, reflect.ValueOf(s).Elem())
	buf, ok3 := appendValue(buf, reflect.ValueOf(b.in.Addresses[s.Name]))
	ok = ok && ok2 && ok3
	for _, v := range b.ix.versionNames(s) {
		eps, found := b.in.Endpoints[s.Name+"/"+v]
		var ok4, ok5, ok6 bool
		buf, ok4 = appendValue(buf, reflect.ValueOf(v))
		buf, ok5 = appendValue(buf, reflect.ValueOf(found))
		buf, ok6 = appendValue(buf, reflect.ValueOf(eps))
		ok = ok && ok4 && ok5 && ok6
	}
	mfp := b.meshFP()
	buf = append(buf, mfp...)
	inc.buf = buf
	fp := ""
	if ok && mfp != "" {
		sum := sha256.Sum256(buf)
		fp = string(sum[:])
	}
	inc.svcFP[s] = fp
	return fp
}

// meshFP fingerprints the mesh block.
func (b *builder) meshFP() string {
	inc := b.inc
	if inc.meshFP == "" {
		h := sha256.New()
		if inc.writeFP(h, b.m.Mesh) {
			inc.meshFP = string(h.Sum(nil))
		}
	}
	return inc.meshFP
}

// identityFP fingerprints what one service's inbound side may read of the
// rest of the mesh: every service's name, namespace and service account
// (authorization sources name services), and every extension (extensions
// select services by name). "" when it cannot be made.
func (b *builder) identityFP() string {
	inc := b.inc
	if inc.identFP != "" {
		return inc.identFP
	}
	h := sha256.New()
	ok := true
	for _, name := range b.ix.serviceNames {
		s := b.m.Services[name]
		ok = ok && inc.writeFP(h, [3]string{name, s.Namespace, s.ServiceAccount})
	}
	names := make([]string, 0, len(b.m.Extensions))
	for n := range b.m.Extensions {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ok = ok && inc.writeFP(h, n) && inc.writeFP(h, b.m.Extensions[n])
	}
	if ok {
		inc.identFP = string(h.Sum(nil))
	}
	return inc.identFP
}

// inboundFP is the fingerprint of a service's inbound side: the service
// (serviceFP) and what its authorization and extensions read of others
// (identityFP).
func (b *builder) inboundFP(s *model.Service) string {
	if b.inc == nil {
		return ""
	}
	fs, fi := b.serviceFP(s), b.identityFP()
	if fs == "" || fi == "" {
		return ""
	}
	return fs + fi
}

// clusterFP is the fingerprint of a mesh service's clusters.
func (b *builder) clusterFP(s *model.Service) string {
	if b.inc == nil {
		return ""
	}
	return b.serviceFP(s)
}

// writeFP writes v's canonical encoding (appendValue) to h; false if
// it has none. It encodes into one scratch buffer per render (wbuf, apart
// from serviceFP's buf, which is live across a meshFP call): it runs for
// every service of every route config on every render.
func (inc *incremental) writeFP(h hash.Hash, v any) bool {
	buf, ok := appendValue(inc.wbuf[:0], reflect.ValueOf(&v).Elem())
	inc.wbuf = buf
	h.Write(buf)
	return ok
}

// vhostID names a service's virtual host across renders: vhostKey with
// the service's name instead of its (per-load) pointer.
type vhostID struct {
	fl      flavour
	service string
	port    int
	sameNS  bool
}

// cachedVHost is a virtual host as its build left it. validated says the
// render that kept it ran the virtual host's generated validation (it
// passed: only renders without findings are kept).
type cachedVHost struct {
	fp        string
	v         *vhost
	eff       *effects
	validated bool
}

// vhostCached is buildServiceVHost, reusing the previous render's virtual
// host when vhostFP is unchanged. A reused virtual host is the previous
// message, so the validation and the strict check (envoystrict.Memo) of
// the previous render hold for it.
func (b *builder) vhostCached(key vhostKey, callerNS string) *vhost {
	t := key.t
	inc := b.inc
	fp := b.vhostFP(t)
	if fp == "" {
		return b.buildServiceVHost(key.fl, t, key.port, callerNS)
	}
	id := vhostID{key.fl, t.Name, key.port, key.sameNS}
	if cv := inc.vbase[id]; cv != nil && cv.fp == fp {
		b.replay(cv.eff)
		if cv.validated {
			b.validVHost[cv.v.vh] = true
		}
		inc.vnext[id] = cv
		inc.reused++
		return cv.v
	}
	var v *vhost
	eff := inc.record(func() { v = b.buildServiceVHost(key.fl, t, key.port, callerNS) })
	inc.vnext[id] = &cachedVHost{fp: fp, v: v, eff: eff}
	return v
}

// vhostFP fingerprints what a service's virtual host reads: the service
// (serviceFP: its routes, the mesh block) and the serviceFP of every service its routes send or mirror to (their hosts,
// ports, versions, traffic policies and clusters). A route to an external
// service is not cached (its cluster reads the external and its egress
// gateway): "". It is memoised per service: every route config a service
// is in (routeConfigFP, once per outbound view and port) and each of its
// virtual hosts asks for it.
func (b *builder) vhostFP(t *model.Service) string {
	if b.inc == nil {
		return ""
	}
	if fp, ok := b.inc.vhFP[t]; ok {
		return fp
	}
	fp := b.buildVHostFP(t)
	b.inc.vhFP[t] = fp
	return fp
}

// buildVHostFP computes vhostFP.
func (b *builder) buildVHostFP(t *model.Service) string {
	fp := b.serviceFP(t)
	if fp == "" {
		return ""
	}
	h := sha256.New()
	h.Write([]byte(fp))
	seen := map[string]bool{t.Name: true}
	add := func(name string) bool {
		if seen[name] {
			return true
		}
		seen[name] = true
		d := b.m.Services[name]
		if d == nil {
			return b.inc.writeFP(h, "missing:"+name)
		}
		f := b.serviceFP(d)
		h.Write([]byte(f))
		return f != ""
	}
	for i := range t.Routes {
		r := &t.Routes[i]
		for _, d := range r.To {
			if d.External != "" {
				return ""
			}
			if d.Service != "" && !add(d.Service) {
				return ""
			}
		}
		if m := r.Mirror; m != nil && m.Service != "" && !add(m.Service) {
			return ""
		}
	}
	return string(h.Sum(nil))
}

// finish records, for the next render, which of the kept virtual hosts
// this (finding-free) render validated.
func (inc *incremental) finish(b *builder) {
	for id, cv := range inc.vnext {
		if !cv.validated && b.validVHost[cv.v.vh] {
			cp := *cv
			cp.validated = true
			inc.vnext[id] = &cp
		}
	}
}

// routeConfigFP fingerprints a sidecar's outbound route configuration of
// one port: the virtual hosts of svcs (vhostFP each; the caller's
// namespace is in the route configuration's key), and the mesh block
// (ALLOW_ANY's catch-all; in every serviceFP). One with external services
// is not cached: "".
func (b *builder) routeConfigFP(svcs []*model.Service, exts []extPort) string {
	if b.inc == nil || len(exts) > 0 || len(svcs) == 0 {
		return ""
	}
	h := sha256.New()
	for _, t := range svcs {
		fp := b.vhostFP(t)
		if fp == "" {
			return ""
		}
		b.inc.writeFP(h, t.Name)
		h.Write([]byte(fp))
	}
	return string(h.Sum(nil))
}

// cachedLayer is a layer and the resources it was made of, with their
// dependencies, in the order newLayer adds them.
type cachedLayer struct {
	flat []*Resource
	l    *Layer
}

// layerCached returns the previous render's layer of key when rs (with
// their dependencies) are, name for name and version for version, what it
// was made of; else nil. flat is rs flattened, for noteLayer.
func (b *builder) layerCached(key string, rs []*Resource) (l *Layer, flat []*Resource) {
	if b.inc == nil {
		return nil, nil
	}
	flat = flatten(nil, rs)
	cl := b.inc.lbase[key]
	if cl == nil || len(cl.flat) != len(flat) {
		return nil, flat
	}
	for i, r := range flat {
		o := cl.flat[i]
		if r != o && (r.typeIndex != o.typeIndex || r.Name != o.Name || r.Version != o.Version) {
			return nil, flat
		}
	}
	b.inc.reused++
	return cl.l, flat
}

// flatten appends rs and, after each, its dependencies, as
// proxyBuilder.add visits them.
func flatten(out, rs []*Resource) []*Resource {
	for _, r := range rs {
		if r == nil {
			continue
		}
		out = append(out, r)
		out = flatten(out, r.deps)
	}
	return out
}

// noteLayer keeps a layer for the next render.
func (b *builder) noteLayer(key string, flat []*Resource, l *Layer) {
	if b.inc != nil {
		b.inc.lnext[key] = &cachedLayer{flat: flat, l: l}
	}
}
