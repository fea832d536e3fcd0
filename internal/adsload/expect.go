package adsload

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// Mode says how a node subscribes, which decides what it ends up holding.
type Mode int

const (
	// Envoy subscribes to listeners and clusters by wildcard, then to the
	// route configurations and assignments they reference.
	Envoy Mode = iota
	// Proxyless (grpc-go) subscribes to named listeners, then by name to the
	// route configurations, clusters and assignments they lead to.
	Proxyless
)

// Types are the followed type URLs, in the order a proxy applies them.
var Types = [4]string{resource.ListenerType, resource.RouteType, resource.ClusterType, resource.EndpointType}

// typeIdx returns typeURL's position in Types, or -1.
func typeIdx(typeURL string) int {
	for i, t := range Types {
		if t == typeURL {
			return i
		}
	}
	return -1
}

// EntryHash hashes one held resource. A stream's digest is the sum of the
// hashes of everything it holds, so the load client and the control plane
// can agree on "this stream has exactly the config" by comparing one number
// instead of shipping resource lists between processes.
func EntryHash(typeURL, name, version string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typeURL))
	h.Write([]byte{0})
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(version))
	return h.Sum64()
}

// Followed is what a following stream of one class holds, by position in
// Types, each list sorted by name.
type Followed [4][]*xds.Resource

// Digest is the sum of EntryHash over everything held.
func (f Followed) Digest() uint64 {
	var sum uint64
	for i, list := range f {
		for _, r := range list {
			sum += EntryHash(Types[i], r.Name, r.Version)
		}
	}
	return sum
}

// Count is the number of resources held.
func (f Followed) Count() int {
	n := 0
	for _, list := range f {
		n += len(list)
	}
	return n
}

// Changed counts the resources a delta stream holding old must receive or
// drop to hold f: new or changed ones plus removed ones. Both sides are
// sorted by name, so one merge walk does it without allocating.
func (f Followed) Changed(old Followed) int {
	n := 0
	for t := range f {
		a, b := old[t], f[t]
		i, j := 0, 0
		for i < len(a) || j < len(b) {
			switch {
			case j == len(b) || (i < len(a) && a[i].Name < b[j].Name):
				n++ // removed
				i++
			case i == len(a) || b[j].Name < a[i].Name:
				n++ // added
				j++
			default:
				if a[i] != b[j] && a[i].Version != b[j].Version {
					n++
				}
				i++
				j++
			}
		}
	}
	return n
}

// Expecter computes what a following stream of a class ends up holding. It
// memoises every resource's references by pointer (render shares one
// *xds.Resource between the classes that hold it) and by content (name and
// version), so a second revision decodes only what changed.
type Expecter struct {
	byPtr     map[*xds.Resource]Refs
	byVersion map[[3]string]Refs
}

// NewExpecter returns an empty Expecter.
func NewExpecter() *Expecter {
	return &Expecter{byPtr: map[*xds.Resource]Refs{}, byVersion: map[[3]string]Refs{}}
}

func (e *Expecter) refsOf(typeURL string, r *xds.Resource) (Refs, error) {
	if refs, ok := e.byPtr[r]; ok {
		return refs, nil
	}
	k := [3]string{typeURL, r.Name, r.Version}
	refs, ok := e.byVersion[k]
	if !ok {
		var err error
		if refs, err = RefsOf(typeURL, r.Any.GetValue()); err != nil {
			return refs, fmt.Errorf("%s %q: %w", typeURL, r.Name, err)
		}
		e.byVersion[k] = refs
	}
	e.byPtr[r] = refs
	return refs, nil
}

// Follow simulates a stream of mode on cfg: Envoy takes every listener and
// cluster, Proxyless the listeners named; each then takes what those
// reference, as the load client does.
func (e *Expecter) Follow(cfg *xds.ClassConfig, mode Mode, listeners []string) (Followed, error) {
	var f Followed
	if cfg == nil {
		return f, nil
	}
	all := func(t int) []*xds.Resource { return cfg.List(Types[t]) }
	if mode == Envoy {
		f[0] = all(0)
	} else {
		f[0] = pick(all(0), listeners)
	}
	var routes, clusters, assignments []string
	collect := func(t int) error {
		for _, r := range f[t] {
			refs, err := e.refsOf(Types[t], r)
			if err != nil {
				return err
			}
			routes = append(routes, refs.Routes...)
			clusters = append(clusters, refs.Clusters...)
			assignments = append(assignments, refs.Assignments...)
		}
		return nil
	}
	if err := collect(0); err != nil {
		return f, err
	}
	f[1] = pick(all(1), routes)
	if mode == Envoy {
		f[2] = all(2) // and route configurations need not be decoded
	} else {
		if err := collect(1); err != nil {
			return f, err
		}
		f[2] = pick(all(2), clusters)
	}
	assignments = assignments[:0]
	if err := collect(2); err != nil {
		return f, err
	}
	f[3] = pick(all(3), assignments)
	return f, nil
}

// pick returns the resources of list (sorted by name) named in names.
func pick(list []*xds.Resource, names []string) []*xds.Resource {
	names = sortedUnique(slices.Clone(names))
	var out []*xds.Resource
	for _, n := range names {
		i := sort.Search(len(list), func(i int) bool { return list[i].Name >= n })
		if i < len(list) && list[i].Name == n {
			out = append(out, list[i])
		}
	}
	return out
}
