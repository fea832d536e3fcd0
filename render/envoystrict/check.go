// Package envoystrict checks a proxy class's xDS resources against the
// rules Envoy applies when it loads them, so that gitmesh never sends what
// an Envoy would NACK (and be stricter than Envoy where Envoy would accept
// something that cannot work, like a captured port with no listener).
// No Envoy binary runs where gitmesh is built and tested, so these rules
// are the stand-in for one: each rule lives in its own rule_*.go file with
// a comment naming the Envoy source (file and function) or document it
// mirrors.
//
// The package is pure (no I/O, clocks or logging) and knows nothing of the
// mesh model except positions: every resource carries the model path it
// was rendered from, and findings are model.Diagnostics with GM08xx codes
// positioned at that path, as render's own findings are.
//
// Classes share most of their resources (a sidecar's outbound layer is one
// Set shared by every sidecar of a namespace), so a Checker remembers what
// it learnt about each distinct Resource and Set: checking 1,000 classes
// that share one layer costs one layer plus 1,000 small own sets.
package envoystrict

import (
	"fmt"
	"sort"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Resource is one xDS resource as the check sees it. The check never
// modifies Message.
type Resource struct {
	// TypeURL is the xDS type URL the resource is served under.
	TypeURL string
	// Name is the xDS resource name.
	Name string
	// Message is the resource proto.
	Message proto.Message
	// Path is the model path of the node the resource was rendered from;
	// findings about the resource are positioned there.
	Path string
}

// types is the order the check visits resource types in: the order
// render and the server use (clusters, endpoints, listeners, routes), so
// findings come out in a stable order.
var types = [...]string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Set is resources by type URL, each list sorted by name: a class's own
// resources, or a layer many classes share whole.
type Set struct {
	byType map[string][]*Resource
}

// NewSet returns a set of byType's lists, which must each be sorted by
// name; the set keeps them (callers must not modify them afterwards).
func NewSet(byType map[string][]*Resource) *Set { return &Set{byType: byType} }

// Resources returns the set's resources of one type URL, sorted by name.
func (s *Set) Resources(typeURL string) []*Resource {
	if s == nil {
		return nil
	}
	return s.byType[typeURL]
}

// has reports whether the set holds a resource named name of typeURL.
func (s *Set) has(typeURL, name string) bool {
	rs := s.Resources(typeURL)
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Name >= name })
	return i < len(rs) && rs[i].Name == name
}

// Class is one proxy class's resources: Shared (a layer it receives whole
// with other classes, or nil) and Own. A name must not be in both.
type Class struct {
	// Name is the proxy class, like "sidecar/default/reviews/v1".
	Name   string
	Shared *Set
	Own    *Set
	// Capture, when set, describes the traffic an iptables redirect sends
	// to the class's original-destination listeners (rule_original_dst.go).
	Capture *Capture
}

// Options are the caller's hooks into its own bookkeeping. All may be nil.
type Options struct {
	// Pos returns the source position of a model path.
	Pos func(path string) model.Pos
	// Unpack returns the message an Any was packed from, when the caller
	// still has it, so the check reads it without unmarshalling; nil
	// means "unmarshal".
	Unpack func(*anypb.Any) proto.Message
	// RoutePath returns the model path a rendered route came from, so a
	// finding about one route points at the rule rather than the whole
	// route configuration; "" when unknown.
	RoutePath func(*routev3.Route) string
	// RefPath returns the model path that first referenced a resource
	// name, so a dangling reference points at what made it; "" when
	// unknown.
	RefPath func(name string) string
	// SecretServed reports whether an SDS secret name will be served; nil
	// means every name is.
	SecretServed func(name string) bool
	// Memo, when set, supplies the facts of resources an earlier check
	// walked cleanly and learns this check's (memo.go).
	Memo *Memo
}

// Checker checks classes and collects findings. It remembers what it
// learnt about each distinct Resource and Set (by pointer), so resources
// shared between classes are walked once; a shared resource's findings are
// reported once, naming the first class that has it. A Checker is not safe
// for concurrent use.
type Checker struct {
	opt      Options
	res      map[*Resource]*facts
	vhosts   map[*routev3.VirtualHost]*vhostFacts
	sets     map[*Set]*setFacts
	outbound map[outboundKey][]Destination
	reported map[reportKey]bool
	diags    model.Diagnostics
	// regexTypes memoises mayHoldRegex by message type.
	regexTypes map[protoreflect.FullName]bool
}

// reportKey de-duplicates findings about shared resources.
type reportKey struct {
	r    *Resource
	what string
}

// New returns a Checker.
func New(opt Options) *Checker {
	return &Checker{
		opt:      opt,
		res:      map[*Resource]*facts{},
		vhosts:   map[*routev3.VirtualHost]*vhostFacts{},
		sets:     map[*Set]*setFacts{},
		outbound: map[outboundKey][]Destination{},
		reported: map[reportKey]bool{},

		regexTypes: map[protoreflect.FullName]bool{},
	}
}

// Check runs every rule over one class on its own: New(opt), Check, and
// its Diagnostics.
func Check(cl Class, opt Options) model.Diagnostics {
	c := New(opt)
	c.Check(cl)
	return c.Diagnostics()
}

// Diagnostics returns the findings so far, sorted.
func (c *Checker) Diagnostics() model.Diagnostics {
	c.diags.Sort()
	return c.diags
}

// Check runs every rule over one class. The order only decides which class
// a shared finding names: resource rules first (each distinct resource
// once), then what depends on the class as a whole.
func (c *Checker) Check(cl Class) {
	sf := c.setFacts(cl, cl.Shared)
	for _, t := range types {
		for _, r := range cl.Own.Resources(t) {
			c.facts(cl, r)
		}
	}
	c.checkUniqueNames(cl)
	c.checkReferences(cl, sf)
	c.checkAddresses(cl, sf)
	c.checkCapture(cl, sf)
}

// setFacts is what the check learnt about a shared Set, once.
type setFacts struct {
	// unresolved lists the set's resources with a reference the set itself
	// does not satisfy: only those can dangle in a class that has the set.
	unresolved []*Resource
	// listeners are the set's listeners with an address.
	listeners []*Resource
	// addrKeys are the addresses captured connections can be handed to,
	// made on first use (rule_original_dst.go).
	addrKeys map[addrKey]bool
	// addrs is the set's listeners by address, made on first use
	// (rule_bound_address.go).
	addrs *sharedAddrs
	// capture is what the capture rule needs of the set's listeners,
	// found on first use (rule_original_dst.go).
	capture *sharedCapture
}

// setFacts walks a shared set once (naming cl in its findings).
func (c *Checker) setFacts(cl Class, s *Set) *setFacts {
	if s == nil {
		return &setFacts{}
	}
	if sf, ok := c.sets[s]; ok {
		return sf
	}
	sf := &setFacts{}
	c.sets[s] = sf
	for _, t := range types {
		for _, r := range s.Resources(t) {
			f := c.facts(cl, r)
			if !c.resolvedIn(f, s) {
				sf.unresolved = append(sf.unresolved, r)
			}
			if len(f.addrs) > 0 {
				sf.listeners = append(sf.listeners, r)
			}
		}
	}
	c.duplicateNames(cl, s, nil)
	return sf
}

// facts walks r once: every per-resource rule runs here, and what the
// class-wide rules need (references, addresses) is kept.
func (c *Checker) facts(cl Class, r *Resource) *facts {
	if f, ok := c.res[r]; ok {
		return f
	}
	if f, ok := c.opt.Memo.get(r); ok {
		c.res[r] = f
		c.checkSecrets(cl, r, f)
		return f
	}
	f := &facts{}
	c.res[r] = f
	n := len(c.diags)
	w := &walk{c: c, cl: cl, r: r, f: f}
	w.resource()
	if len(c.diags) == n {
		c.opt.Memo.put(r, f)
	}
	c.checkSecrets(cl, r, f)
	return f
}

// errorf records a finding at path (the resource's when path is "").
func (c *Checker) errorf(code string, r *Resource, path, format string, args ...any) {
	if path == "" && r != nil {
		path = r.Path
	}
	var pos model.Pos
	if c.opt.Pos != nil {
		pos = c.opt.Pos(path)
	}
	c.diags = append(c.diags, model.Diagnostic{
		Code:     code,
		Severity: model.SeverityError,
		Pos:      pos,
		Path:     path,
		Message:  fmt.Sprintf(format, args...),
	})
}

// once reports whether a finding about r is new.
func (c *Checker) once(r *Resource, what string) bool {
	k := reportKey{r, what}
	if c.reported[k] {
		return false
	}
	c.reported[k] = true
	return true
}
