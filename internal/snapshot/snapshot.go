// Package snapshot holds what render produces and the xDS server serves: one
// resource type, one per-class config type and one list of type URLs. It is
// a leaf (protobuf only), so render stays pure and the server needs none of
// render's internals, and nothing converts between the two: the *Resource
// render marshalled is the one every stream sends.
package snapshot

import (
	"maps"
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/sorted"
)

// The xDS type URLs gitmesh serves.
const (
	SecretType   = resource.SecretType
	ClusterType  = resource.ClusterType
	EndpointType = resource.EndpointType
	ListenerType = resource.ListenerType
	RouteType    = resource.RouteType
)

// types is the one list of served type URLs, in push order: secrets and
// clusters before the endpoints that fill them, listeners before the
// routes they name (Envoy's make-before-break order, see the xDS protocol's
// "eventual consistency considerations"). Ordered ADS keeps it on the wire.
var types = [...]string{SecretType, ClusterType, EndpointType, ListenerType, RouteType}

// Types returns the served type URLs in push order. Every list of type URLs
// in gitmesh is this one or Rendered. It is an array, so calling it costs
// no allocation and no caller can change the list for the others.
func Types() [len(types)]string { return types }

// Rendered returns the type URLs render produces (all but secrets, which
// the reconciler supplies), in push order.
func Rendered() [len(types) - 1]string { return [len(types) - 1]string(types[1:]) }

// Abbrev returns the short name of a served type URL that tools print
// (istioctl's column names: SDS, CDS, EDS, LDS, RDS), or typeURL itself
// for a type gitmesh does not serve.
func Abbrev(typeURL string) string {
	switch typeURL {
	case SecretType:
		return "SDS"
	case ClusterType:
		return "CDS"
	case EndpointType:
		return "EDS"
	case ListenerType:
		return "LDS"
	case RouteType:
		return "RDS"
	}
	return typeURL
}

// Noun names a served type URL in messages ("cluster", "route config"),
// or returns typeURL itself for a type gitmesh does not serve.
func Noun(typeURL string) string {
	switch typeURL {
	case SecretType:
		return "secret"
	case ClusterType:
		return "cluster"
	case EndpointType:
		return "endpoint assignment"
	case ListenerType:
		return "listener"
	case RouteType:
		return "route config"
	}
	return typeURL
}

// TypeIndex returns typeURL's position in Types, or -1 for a type gitmesh
// does not serve.
func TypeIndex(typeURL string) int {
	for i, t := range types {
		if t == typeURL {
			return i
		}
	}
	return -1
}

// Resource is one xDS resource, marshalled once by render and shared by every
// class and stream that serves it. The server never re-marshals or copies it:
// every response to every proxy points at the same Any.
type Resource struct {
	// Name is the xDS resource name (listener, cluster, route configuration,
	// cluster load assignment, secret name).
	Name string
	// Version is a content hash of Any's bytes. Two resources with the same
	// name and version are treated as identical, so it decides what is pushed.
	Version string
	// Any holds the deterministically marshalled resource; its TypeUrl must be
	// the type URL the resource is filed under in ClassConfig.Resources.
	Any *anypb.Any
}

// ClassConfig is everything one proxy class receives, by type URL. Each list
// is sorted by name with no duplicates, so the server can binary-search it
// instead of keeping a map per class (1,000 classes × 2,000 resources would
// otherwise cost hundreds of megabytes of map buckets).
type ClassConfig struct {
	Resources map[string][]*Resource
	// Shared, when set, is configuration the class receives whole and
	// shares with other classes (render's outbound layer: without
	// dependsOn, ~9,000 resources every sidecar of a namespace receives);
	// the class serves Shared's resources and its own. The server indexes,
	// diffs and encodes one Shared once for all the classes that point at
	// it, and a delta stream's state refers to it by version instead of
	// holding a copy of every name. A name must not be in both for a type;
	// Shared.Shared must be nil.
	Shared *ClassConfig
	// Version, when not empty, is a content hash of the whole config
	// (Shared included): two configs with one Version serve the same
	// resources. render sets it, so a server handed a fresh config of an
	// unchanged class (or an unchanged Shared) recognises it in O(1)
	// without the caller keeping the previous revision's objects. A config
	// assembled by hand (the secrets overlay, the state file) leaves it
	// empty and is compared by pointer.
	Version string
}

// Same reports whether c and o are known to serve the same resources: the
// same object, or one non-empty Version.
func (c *ClassConfig) Same(o *ClassConfig) bool {
	return c == o || (c != nil && o != nil && c.Version != "" && c.Version == o.Version)
}

// List returns every resource of one type the class serves, Shared's and
// its own, sorted by name. It allocates when both have some: for tools
// and tests, not for per-stream paths.
func (c *ClassConfig) List(typeURL string) []*Resource {
	if c == nil {
		return nil
	}
	own := c.Resources[typeURL]
	if c.Shared == nil {
		return own
	}
	return sorted.Merge(c.Shared.Resources[typeURL], own, func(r *Resource) string { return r.Name })
}

// Types returns the type URLs the class serves resources of, sorted.
func (c *ClassConfig) Types() []string {
	if c == nil {
		return nil
	}
	seen := map[string]bool{}
	for t, l := range c.Resources {
		if len(l) > 0 {
			seen[t] = true
		}
	}
	if c.Shared != nil {
		for t, l := range c.Shared.Resources {
			if len(l) > 0 {
				seen[t] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Update is one revision's configuration for every class. Apply replaces the
// whole served state with it: a class missing from Classes is removed.
type Update struct {
	// Revision names the Git revision the configuration was rendered from; it
	// is reported in status and in delta responses' system_version_info.
	Revision string
	// Classes maps a proxy class ("sidecar/NS/SVC/VER", "ingress/GW", ...) to
	// its configuration. A config Same as the one served by the previous
	// Apply is skipped in O(1). The map may be render's own: nobody writes
	// to an Update's map after building it.
	Classes map[string]*ClassConfig
}

// ClassSecrets names the SDS secrets of one proxy class, as render plans
// them: `ROOTCA` (always), `default` issued for Identity, and the gateway
// credentials its listeners name (Credentials, sorted, with NAME-cacert for
// MUTUAL ones). Names only: the reconciler supplies the PEM bytes, and the
// state file keeps this to rebuild secrets after a restart.
type ClassSecrets struct {
	// Identity is the class's SPIFFE id, the subject of its `default`.
	Identity string
	// Credentials are SDS names of gateway credentials, sorted.
	Credentials []string
}
