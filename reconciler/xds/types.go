package xds

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/sorted"
)

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
	// its configuration. A *ClassConfig pointer equal to the one served by the
	// previous Apply is skipped in O(1), so callers should share unchanged ones.
	Classes map[string]*ClassConfig
}

// Validate reports every structural problem of u at once: lists out of
// order, duplicate or empty names, missing versions, and resources filed
// under the wrong type URL. A bad update is never half-applied.
func (u Update) Validate() error { return u.validate(nil) }

// validate is Validate skipping the classes for which known reports true:
// Apply passes the configs it already serves, which were validated when
// they were first applied, so a one-class change costs one class.
func (u Update) validate(known func(class string, cfg *ClassConfig) bool) error {
	var errs []error
	// Lists shared between classes are checked once: at 1,000 unscoped
	// classes that is the difference between 2 ms and 50 ms per Apply.
	type listKey struct {
		typeURL string
		first   **Resource
		n       int
	}
	checked := map[listKey]error{}
	if u.Revision == "" {
		errs = append(errs, errors.New("revision is empty"))
	}
	for _, class := range slices.Sorted(maps.Keys(u.Classes)) {
		cfg := u.Classes[class]
		if class == "" || strings.HasPrefix(class, "/") || strings.HasSuffix(class, "/") {
			errs = append(errs, fmt.Errorf("class %q: malformed class name", class))
		}
		if cfg == nil || (known != nil && known(class, cfg)) {
			continue
		}
		check := func(res map[string][]*Resource, what string) {
			for _, typeURL := range slices.Sorted(maps.Keys(res)) {
				list := res[typeURL]
				if len(list) == 0 {
					continue
				}
				k := listKey{typeURL, &list[0], len(list)}
				err, ok := checked[k]
				if !ok {
					err = validateList(typeURL, list)
					checked[k] = err
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("class %q%s: %w", class, what, err))
				}
			}
		}
		check(cfg.Resources, "")
		if sh := cfg.Shared; sh != nil {
			check(sh.Resources, " (shared)")
			if sh.Shared != nil {
				errs = append(errs, fmt.Errorf("class %q: shared config has a shared config of its own", class))
			}
			errs = append(errs, overlaps(class, cfg)...)
		}
	}
	return errors.Join(errs...)
}

// overlaps reports names a class has both in Shared and on its own.
func overlaps(class string, cfg *ClassConfig) []error {
	var errs []error
	for typeURL, own := range cfg.Resources {
		shared := cfg.Shared.Resources[typeURL]
		for _, r := range own {
			if r == nil || len(shared) == 0 {
				continue
			}
			i := sort.Search(len(shared), func(i int) bool { return shared[i] != nil && shared[i].Name >= r.Name })
			if i < len(shared) && shared[i] != nil && shared[i].Name == r.Name {
				errs = append(errs, fmt.Errorf("class %q: %s %q is both shared and its own", class, typeURL, r.Name))
			}
		}
	}
	return errs
}

// validateList checks one type's list of one class.
func validateList(typeURL string, list []*Resource) error {
	var errs []error
	for i, r := range list {
		switch {
		case r == nil:
			errs = append(errs, fmt.Errorf("%s[%d]: nil resource", typeURL, i))
			continue
		case r.Name == "":
			errs = append(errs, fmt.Errorf("%s[%d]: empty name", typeURL, i))
		case r.Version == "":
			errs = append(errs, fmt.Errorf("%s %q: empty version", typeURL, r.Name))
		case r.Any == nil:
			errs = append(errs, fmt.Errorf("%s %q: nil Any", typeURL, r.Name))
		case r.Any.GetTypeUrl() != typeURL:
			errs = append(errs, fmt.Errorf("%s %q: Any has type %q", typeURL, r.Name, r.Any.GetTypeUrl()))
		}
		if i > 0 && list[i-1] != nil && list[i-1].Name >= r.Name {
			errs = append(errs, fmt.Errorf("%s: %q after %q: names must be sorted and unique", typeURL, r.Name, list[i-1].Name))
		}
	}
	return errors.Join(errs...)
}
