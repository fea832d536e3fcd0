// Package render turns a mesh model into the Envoy xDS resources every proxy
// class receives. It is a pure function: no I/O, no clocks, no goroutines and
// no map-order output, so the same model renders to byte-identical resources
// with the same versions on every replica and every run.
//
// The translation runs in two stages, as in Envoy Gateway: the model is first
// indexed into a small intermediate view (ir.go: effective mTLS modes, hosts,
// identities, resolved dependencies), then one file per Envoy feature builds
// protos from that view (cluster.go, route.go, filters.go, rbac.go, tls.go)
// and one file per proxy kind assembles them (sidecar.go, gateway.go,
// egress.go, proxyless.go). A final pass (validate.go) checks every emitted
// resource with its generated validation and every proxy class with the
// Envoy-strict rules (render/envoystrict) before the bundle is returned.
//
// The bundle is also what the xDS server serves: Bundle.Update is an
// internal/snapshot update made of render's own objects (each distinct
// resource marshalled once, a shared layer as one ClassConfig, every
// config carrying its content version), and Bundle.Secrets is the secrets
// plan whose protos Secret builds from PEM bytes the reconciler supplies.
//
// Resource names and proxy classes are documented in NAMES.md.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/render/envoystrict"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Input is everything a render depends on. It holds no clocks or handles, so
// a render is reproducible from its Input alone.
type Input struct {
	Mesh *model.Mesh
	// Endpoints discovered at run time (Kubernetes) override a version's static ones;
	// key "SERVICE/VERSION". Nil means static endpoints only.
	Endpoints map[string][]model.Endpoint
	// Addresses discovered at run time (Kubernetes ClusterIPs), key
	// "SERVICE"; they are a service's VIPs when its CUE declares none.
	// Nil means none (VIPs are declared or allocated).
	Addresses map[string][]string
	// Credentials names the gateway credentials that can be served (for the
	// consistency check of SDS names); nil means "trust credentialName".
	Credentials map[string]bool
}

// Resource is one named xDS resource with its content version. A Resource is
// immutable once rendered and may be shared by pointer between proxies: a
// cluster that 500 sidecars call is one Resource. Its Served form (name,
// version and the marshalled Any, without the proto tree and render's
// bookkeeping) is what the xDS server keeps.
type Resource struct {
	// Name is the xDS resource name.
	Name string
	// Version is the first 16 hex digits of the sha256 of the resource's
	// deterministic protobuf encoding, so equal content has equal versions
	// on every replica.
	Version string
	// Message is the resource proto; callers must not modify it.
	Message proto.Message

	typeURL   string
	typeIndex int
	bytes     []byte
	// origin is the model path of the node the resource was rendered from,
	// for diagnostics.
	origin string
	// deps are resources this one needs in the same proxy (the clusters a
	// route config names, the assignment of an EDS cluster).
	deps []*Resource
	// strict is the resource as the self-check sees it, made (and the
	// resource validated) once per distinct resource; it points at
	// strictVal (one allocation with the resource).
	strict    *envoystrict.Resource
	strictVal envoystrict.Resource
	// served is what the xDS server serves, allocated with its Any.
	served *snapshot.Resource
}

// servedResource holds a snapshot.Resource and its Any in one allocation.
type servedResource struct {
	snapshot.Resource
	any anypb.Any
}

// Bytes returns the deterministic protobuf encoding the version was computed
// from, so servers and dumps need not marshal the resource again.
func (r *Resource) Bytes() []byte { return r.bytes }

// Served returns the resource as the xDS server serves it: the same name,
// version and bytes, one object for every class that has the resource.
func (r *Resource) Served() *snapshot.Resource { return r.served }

// TypeURL returns the xDS type URL of the resource.
func (r *Resource) TypeURL() string { return r.typeURL }

// Bundle is the rendered config of a whole mesh: every proxy class's
// resources, both as render's Proxies (with protos, for tools) and as the
// snapshot the xDS server indexes.
type Bundle struct {
	classes []string
	proxies map[string]*Proxy
	// configs is every class's snapshot config; the classes of a service's
	// versions share one.
	configs map[string]*snapshot.ClassConfig
	// secrets is the secrets plan by class (secrets.go).
	secrets map[string]snapshot.ClassSecrets
}

// Classes returns the proxy class names, sorted.
func (b *Bundle) Classes() []string { return b.classes }

// Update is the bundle as the xDS server serves it, labelled revision. The
// configs are render's own: each distinct resource is one
// snapshot.Resource shared by pointer, a layer is one ClassConfig every
// class of it names as Shared, and every config carries its content
// Version, so a server compares an unchanged class with what it serves in
// O(1). Its Classes map is the bundle's: callers must not modify it.
// Secrets are not in it: they are the reconciler's (see Secrets).
func (b *Bundle) Update(revision string) snapshot.Update {
	return snapshot.Update{Revision: revision, Classes: b.configs}
}

// Proxy returns the resources of one proxy class, or nil if the class is
// unknown.
func (b *Bundle) Proxy(class string) *Proxy { return b.proxies[class] }

// Render renders the mesh into every proxy class's resources. On failure the
// error is a model.Diagnostics with GM08xx codes and the positions of the
// model nodes that caused it; a bundle is returned only when it is complete
// and consistent, so a bad revision is never half pushed.
func Render(in Input) (*Bundle, error) { return render(in, nil) }

// render is Render, reusing what inc's base built when inc is not nil
// (incremental.go).
func render(in Input, inc *incremental) (*Bundle, error) {
	if in.Mesh == nil {
		return nil, model.Diagnostics{{Code: CodeInvalidValue, Message: "no mesh to render"}}
	}
	b := newBuilder(in)
	if inc != nil {
		inc.svcFP = make(map[*model.Service]string, len(in.Mesh.Services))
		b.inc = inc
	}
	b.buildAll()
	if len(b.diags) == 0 {
		b.validate()
	}
	if len(b.diags) == 0 {
		b.planSecrets()
	}
	if len(b.diags) > 0 {
		b.diags.Sort()
		return nil, b.diags
	}
	if inc != nil {
		inc.finish(b)
	}
	return b.bundle, nil
}

// builder holds the state of one Render call: the model index, the memo of
// distinct resources and the diagnostics collected so far.
type builder struct {
	in     Input
	m      *model.Mesh
	ix     *index
	memo   map[memoKey]*Resource
	bundle *Bundle
	diags  model.Diagnostics
	// refOrigin maps a referenced resource name to the model path that first
	// referenced it, so a dangling reference points at the route that made
	// it rather than at the whole route config.
	refOrigin map[string]string
	// outbound and vhosts memoise per-service outbound sets and virtual
	// hosts, which are not resources themselves but are shared like them.
	outbound map[string][]*Resource
	vhosts   map[vhostKey]*vhost
	// layers memoises sidecars' outbound layers by outboundKey.
	layers map[string]*Layer
	// routeOrigin maps each rendered route to its model path, so semantic
	// findings about a route point at the rule, not at the route config.
	routeOrigin map[*routev3.Route]string
	// packed maps every Any render built to the message inside it.
	packed map[*anypb.Any]proto.Message
	// validVHost marks virtual hosts already validated.
	validVHost map[*routev3.VirtualHost]bool
	// commonTLS memoises mesh TLS contexts by peer identity.
	commonTLS map[string]*tlsv3.CommonTlsContext
	// clusters memoises mesh service clusters by a struct key.
	clusters map[clusterKey]*Resource
	// trace memoises the tracing config shared by every HCM.
	trace struct {
		done    bool
		cfg     *hcmv3.HttpConnectionManager_Tracing
		cluster *Resource
	}
	// policies memoises rendered authorization rules (sharedPolicy).
	policies map[policyKey]*rbacv3.Policy
	// paths memoises services' model paths (svcPath).
	paths map[svcPathKey]string
	// fixed holds the sub-messages that are the same everywhere (shared.go).
	fixed fixedParts
	// checked lists the proxies the consistency pass must check (aliases
	// share their lists with one of these).
	checked []*Proxy
	// reported de-duplicates findings about shared resources.
	reported map[string]bool
	// inc is the incremental render's state, nil for a full render.
	inc *incremental
}

// memoKey identifies a distinct resource: its type and a key that
// determines its content (usually a flavour plus the name).
type memoKey struct{ typeURL, key string }

func newBuilder(in Input) *builder {
	// The big memo maps grow with the services (per service, about 12
	// distinct resources, 8 packed messages, 5 clusters and 5 paths in
	// generated meshes); sizing them up front saves rehashing them
	// through every doubling.
	n := len(in.Mesh.Services)
	return &builder{
		in:        in,
		m:         in.Mesh,
		ix:        newIndex(in.Mesh, in.Addresses),
		memo:      make(map[memoKey]*Resource, 12*n),
		bundle:    &Bundle{proxies: make(map[string]*Proxy, n), configs: make(map[string]*snapshot.ClassConfig, n)},
		refOrigin: map[string]string{},
		outbound:  map[string][]*Resource{},
		layers:    map[string]*Layer{},
		vhosts:    map[vhostKey]*vhost{},
		reported:  map[string]bool{},
		clusters:  make(map[clusterKey]*Resource, 5*n),
		packed:    make(map[*anypb.Any]proto.Message, 8*n),
		commonTLS: map[string]*tlsv3.CommonTlsContext{},
		paths:     make(map[svcPathKey]string, 5*n),
		policies:  map[policyKey]*rbacv3.Policy{},

		validVHost: map[*routev3.VirtualHost]bool{},

		routeOrigin: map[*routev3.Route]string{},
	}
}

// intern returns the resource memoised under key, building, marshalling and
// hashing it on first use only. key must determine the content completely;
// that is what lets 500 sidecars share one cluster by pointer. build returns
// the message and the resources it depends on; a nil message (after a
// diagnostic) yields nil.
func (b *builder) intern(typeURL, name, key, origin string, build func() (proto.Message, []*Resource)) *Resource {
	k := memoKey{typeURL, key}
	if r, ok := b.memo[k]; ok {
		return r
	}
	msg, deps := build()
	if msg == nil {
		b.memo[k] = nil
		return nil
	}
	r := b.newResource(typeURL, name, origin, msg)
	r.deps = compact(deps)
	b.memo[k] = r
	if b.inc != nil {
		b.inc.noteMemo(k, r)
	}
	return r
}

// newResource marshals msg once, deterministically, and derives the version.
func (b *builder) newResource(typeURL, name, origin string, msg proto.Message) *Resource {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		b.errorf(CodeInvalidResource, origin, "marshal %s %q: %v", snapshot.Noun(typeURL), name, err)
	}
	sum := sha256.Sum256(raw)
	version := hex.EncodeToString(sum[:8])
	sv := &servedResource{Resource: snapshot.Resource{Name: name, Version: version}}
	sv.any.TypeUrl, sv.any.Value = typeURL, raw
	sv.Resource.Any = &sv.any
	return &Resource{
		Name:      name,
		Version:   version,
		Message:   msg,
		typeURL:   typeURL,
		typeIndex: typeIndex(typeURL),
		bytes:     raw,
		origin:    origin,
		served:    &sv.Resource,
	}
}

// servedList is rs as the xDS server serves them.
func servedList(rs []*Resource) []*snapshot.Resource {
	out := make([]*snapshot.Resource, len(rs))
	for i, r := range rs {
		out[i] = r.served
	}
	return out
}

// compact drops nil entries (resources whose build failed with a diagnostic).
func compact(rs []*Resource) []*Resource {
	out := rs[:0]
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// noteRef records the model path that first referenced a resource name.
func (b *builder) noteRef(name, path string) {
	if _, ok := b.refOrigin[name]; !ok {
		b.refOrigin[name] = path
	}
	if b.inc != nil {
		b.inc.noteRef(name, path)
	}
}

// errorf records an error diagnostic about the model node at path.
func (b *builder) errorf(code, path, format string, args ...any) {
	b.diags = append(b.diags, model.Diagnostic{
		Code:     code,
		Severity: model.SeverityError,
		Pos:      b.m.Sources.Lookup(path),
		Path:     path,
		Message:  fmt.Sprintf(format, args...),
	})
}

// proxyBuilder collects one proxy class's resources. Adding a resource adds
// its dependencies too. Resources go into plain slices (no per-proxy maps:
// there are 20,000 proxies at 10,000 services); finish sorts and dedupes.
type proxyBuilder struct {
	b     *builder
	class string
	kind  string
	lists [4][]*Resource
	// shared is the layer the proxy receives whole (sidecars' outbound
	// view); finish leaves out of the proxy's own lists what it holds.
	shared *Layer
}

func (b *builder) newProxy(class, kind string) *proxyBuilder {
	return &proxyBuilder{b: b, class: class, kind: kind}
}

// typeIndex is the position of a type URL in snapshot.Rendered(), the
// index of a proxy's per-type lists.
func typeIndex(typeURL string) int {
	for i, t := range snapshot.Rendered() {
		if t == typeURL {
			return i
		}
	}
	return -1
}

// add puts resources (and, transitively, their deps) into the proxy.
func (p *proxyBuilder) add(rs ...*Resource) {
	for _, r := range rs {
		if r == nil {
			continue
		}
		i := r.typeIndex
		p.lists[i] = append(p.lists[i], r)
		if len(r.deps) > 0 {
			p.add(r.deps...)
		}
	}
}

// finish sorts the proxy's resources by name, drops repeats and stores the
// proxy in the bundle. Sorting here, on names, is what makes the output
// independent of the order features were built in. Two different resources
// with one name in one proxy are a model conflict: the first added wins and
// a diagnostic is recorded.
//
// Every version of a service receives the same config, so the classes of
// the other versions (aliases) share the sorted lists instead of being built
// again; only the first class is checked by the consistency pass.
func (p *proxyBuilder) finish(aliases ...string) {
	c := &content{shared: p.shared, own: map[string][]*Resource{}}
	cfg := &snapshot.ClassConfig{Resources: map[string][]*snapshot.Resource{}}
	types := snapshot.Rendered()
	for ti, list := range p.lists {
		out := p.sortDedupe(list)
		if p.shared != nil {
			out = p.without(out, p.shared.byType[types[ti]])
		}
		if len(out) > 0 {
			c.own[types[ti]] = append([]*Resource(nil), out...)
			cfg.Resources[types[ti]] = servedList(out)
		}
	}
	c.version = proxyVersion(c.shared, c.own)
	cfg.Version = c.version
	if c.shared != nil {
		cfg.Shared = c.shared.cfg
	}
	c.cfg = cfg
	px := &Proxy{Class: p.class, Kind: p.kind, content: c}
	if _, dup := p.b.bundle.proxies[p.class]; dup {
		p.b.errorf(CodeConflict, "", "two proxies render to class %q", p.class)
		return
	}
	p.b.bundle.proxies[p.class] = px
	p.b.bundle.configs[p.class] = cfg
	p.b.bundle.classes = append(p.b.bundle.classes, p.class)
	p.b.checked = append(p.b.checked, px)
	for _, a := range aliases {
		if _, dup := p.b.bundle.proxies[a]; dup {
			p.b.errorf(CodeConflict, "", "two proxies render to class %q", a)
			continue
		}
		p.b.bundle.proxies[a] = &Proxy{Class: a, Kind: p.kind, content: c}
		p.b.bundle.configs[a] = cfg
		p.b.bundle.classes = append(p.b.bundle.classes, a)
	}
}

// sortDedupe sorts one type's list by name in place and drops repeats,
// recording a conflict for one name with two contents.
func (p *proxyBuilder) sortDedupe(list []*Resource) []*Resource {
	if len(list) == 0 {
		return nil
	}
	slices.SortStableFunc(list, func(a, b *Resource) int { return strings.Compare(a.Name, b.Name) })
	out := list[:1]
	for _, r := range list[1:] {
		last := out[len(out)-1]
		if r.Name != last.Name {
			out = append(out, r)
			continue
		}
		if r != last && r.Version != last.Version {
			p.b.errorf(CodeConflict, r.origin, "proxy %q gets two different %s named %q", p.class, snapshot.Noun(r.typeURL), r.Name)
		}
	}
	return out
}

// buildAll renders every proxy class. The order (services by name, then
// gateways by name) only affects which model path is blamed first for a
// shared problem; the output is sorted regardless.
func (b *builder) buildAll() {
	for _, name := range b.m.ServiceNames() {
		s := b.m.Services[name]
		switch s.Proxy {
		case model.ProxySidecar, "":
			b.buildSidecar(s, b.ix.versionNames(s))
		case model.ProxyProxyless:
			b.buildProxyless(s, b.ix.versionNames(s))
		}
	}
	for _, name := range b.m.GatewayNames() {
		g := b.m.Gateways[name]
		switch g.Kind {
		case model.GatewayIngress:
			b.buildIngress(g)
		case model.GatewayEgress:
			b.buildEgress(g)
		default:
			b.errorf(CodeInvalidValue, model.Path("gateways", g.Name, "kind"), "unknown gateway kind %q", g.Kind)
		}
	}
	sort.Strings(b.bundle.classes)
}
