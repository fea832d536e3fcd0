package xds

import (
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A delta stream's state is go-control-plane's map of the versions it was
// sent (Subscription.ReturnedResources). For a wildcard subscription to a
// class with a shared part, the map holds one base marker (baseKey: "every
// resource of the shared part with this version") plus the class's own
// names, not 9,000 entries per stream: at 1,000 unscoped streams that is
// the difference between ~1 GB of maps and a few megabytes. Everything
// here updates the map in place; see deltaWake for why that is safe.

// errStaleBase ends a stream whose base marker names a shared part the
// server no longer knows; the proxy reconnects with its real versions.
var errStaleBase = status.Error(codes.Unavailable, "xds: stream state refers to a configuration no longer served; reconnect")

// deltaFull compares everything the subscription covers with what the
// stream has, updating the stream's map in place. resolve finds the shared
// part a base marker names.
//
// For a subscription to explicit names the base marker claims only the
// subscribed names of the shared part; names subscribe lists (this
// request's new subscriptions) are not held through it yet.
func deltaFull(v *view, sub cache.Subscription, subscribe []string, resolve func(version string) *typeIndex) ([]*discovery.Resource, []string, error) {
	returned := sub.ReturnedResources()
	var oldBase *typeIndex
	if m, ok := returned[baseKey]; ok {
		if m == v.base.version {
			oldBase = v.base
		} else if oldBase = resolve(m); oldBase == nil {
			return nil, nil, errStaleBase
		}
	}
	if oldBase != nil && slices.Contains(subscribe, "*") {
		// Named to wildcard: the marker claimed only the names that were
		// subscribed; spell those out and drop it.
		fresh := freshSet(subscribe)
		for name := range sub.SubscribedResources() {
			if _, ok := returned[name]; ok || fresh[name] {
				continue
			}
			if kv, ok := versionIn(oldBase, name); ok {
				returned[name] = kv
			}
		}
		delete(returned, baseKey)
		oldBase = nil
	}
	if !sub.IsWildcard() {
		res, removed := deltaNamed(v, sub, oldBase, subscribe)
		return res, removed, nil
	}
	explicit := len(returned)
	for _, k := range []string{syncedKey, baseKey, wildcardKey} {
		if _, ok := returned[k]; ok {
			explicit--
		}
	}
	var own []*discovery.Resource
	hits := 0
	for i, r := range v.own.list {
		kv, ok := returned[r.Name]
		if ok {
			hits++
		} else {
			kv, ok = versionIn(oldBase, r.Name)
		}
		if !ok || kv != r.Version {
			own = append(own, v.own.deltas[i])
		}
		returned[r.Name] = r.Version
	}
	if len(own) == len(v.own.deltas) {
		own = v.own.deltas // all of it: share the slice (see sharedCodec)
	}
	var base []*discovery.Resource
	var removed []string
	switch {
	case oldBase == v.base && hits == explicit:
		// In sync with the shared part and nothing else held: the usual ACK.
	case oldBase == nil && hits == explicit:
		base = v.base.deltas // holds none of it: all of it, shared
	default:
		for i, r := range v.base.list {
			kv, ok := returned[r.Name]
			if ok {
				delete(returned, r.Name) // the marker covers it from now on
			} else {
				kv, ok = versionIn(oldBase, r.Name)
			}
			if !ok || kv != r.Version {
				base = append(base, v.base.deltas[i])
			}
		}
		if len(base) == len(v.base.deltas) {
			base = v.base.deltas
		}
		for name := range returned {
			if isMarker(name) {
				continue
			}
			if _, ok := v.own.find(name); !ok {
				removed = append(removed, name)
				delete(returned, name)
			}
		}
		if oldBase != nil && oldBase != v.base {
			for _, r := range oldBase.list {
				if _, _, ok := v.find(r.Name); !ok {
					removed = append(removed, r.Name)
				}
			}
		}
		slices.Sort(removed)
		removed = slices.Compact(removed)
	}
	setBase(returned, v)
	return concat(base, own), removed, nil
}

// setBase records the shared part the stream now holds whole.
func setBase(returned map[string]string, v *view) {
	if len(v.base.list) > 0 {
		returned[baseKey] = v.base.version
	} else {
		delete(returned, baseKey)
	}
}

// freshSet is the set of names a request newly subscribes to.
func freshSet(subscribe []string) map[string]bool {
	m := make(map[string]bool, len(subscribe))
	for _, n := range subscribe {
		m[n] = true
	}
	return m
}

// deltaNamed is deltaFull for a subscription to explicit names. Shared
// names are held through the base marker, the class's own by name. A
// subscription to most of the view (Envoy's EDS and RDS) walks the sorted
// parts, so its response comes out sorted, and whole parts are sent as the
// parts' own slices for sharedCodec; a small one looks its names up.
func deltaNamed(v *view, sub cache.Subscription, oldBase *typeIndex, subscribe []string) ([]*discovery.Resource, []string) {
	returned := sub.ReturnedResources()
	subscribed := sub.SubscribedResources()
	var fresh map[string]bool
	if oldBase != nil && len(subscribe) > 0 {
		fresh = freshSet(subscribe)
	}
	known := func(name string) (string, bool) {
		if kv, ok := returned[name]; ok {
			return kv, true
		}
		if oldBase == nil || fresh[name] {
			return "", false
		}
		return versionIn(oldBase, name)
	}
	layered := len(v.base.list) > 0
	var base, own []*discovery.Resource
	visit := func(r *Resource, d *discovery.Resource, shared bool) {
		if kv, ok := known(r.Name); !ok || kv != r.Version {
			if shared {
				base = append(base, d)
			} else {
				own = append(own, d)
			}
		}
		if shared {
			delete(returned, r.Name) // the marker covers it
		} else {
			returned[r.Name] = r.Version
		}
	}
	var removed []string
	gone := func(name string) {
		if _, had := known(name); had {
			removed = append(removed, name)
			delete(returned, name)
		}
	}
	if 4*len(subscribed) >= v.len() {
		found := 0
		for i, r := range v.base.list {
			if _, ok := subscribed[r.Name]; ok {
				found++
				visit(r, v.base.deltas[i], true)
			}
		}
		for i, r := range v.own.list {
			if _, ok := subscribed[r.Name]; ok {
				found++
				visit(r, v.own.deltas[i], false)
			}
		}
		if found < len(subscribed) {
			for name := range subscribed {
				if _, _, ok := v.find(name); !ok {
					gone(name)
				}
			}
		}
	} else {
		for name := range subscribed {
			r, d, ok := v.find(name)
			switch {
			case !ok:
				gone(name)
			case !layered:
				visit(r, d, false)
			default:
				_, mine := v.own.find(name)
				visit(r, d, !mine)
			}
		}
		byName := func(a, b *discovery.Resource) int { return cmpName(a.GetName(), b.GetName()) }
		slices.SortFunc(base, byName)
		slices.SortFunc(own, byName)
	}
	for name := range returned { // no longer subscribed: forget silently
		if _, ok := subscribed[name]; !ok && !isMarker(name) {
			delete(returned, name)
		}
	}
	setBase(returned, v)
	slices.Sort(removed)
	if len(base) == len(v.base.deltas) {
		base = v.base.deltas
	}
	if len(own) == len(v.own.deltas) {
		own = v.own.deltas
	}
	return concat(base, own), removed
}

func cmpName(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// deltaWake applies a diff to a parked delta subscription. It updates the
// subscription's map of returned versions in place instead of copying it:
// copying 1,000 entries for each of 1,000 streams on a one-resource change
// would dominate push latency. This is safe because go-control-plane only
// reads or changes that map after cancelling the watch, and cancel waits for
// the class lock held here; once the watch fired we never touch it again.
// A parked stream is in sync with the previous view, base marker included.
func deltaWake(v *view, d typeDiff, sub cache.Subscription) ([]*discovery.Resource, []string) {
	returned := sub.ReturnedResources()
	subscribed := sub.SubscribedResources()
	wildcard := sub.IsWildcard()
	_, hadBase := returned[baseKey]
	var res []*discovery.Resource
	var removed []string
	for _, w := range d.changed {
		name := w.GetName()
		if !wildcard {
			if _, ok := subscribed[name]; !ok {
				continue
			}
		}
		if len(v.base.list) > 0 {
			if _, ok := v.own.find(name); !ok {
				// Shared: held through the marker, not by name.
				delete(returned, name)
				res = append(res, w)
				continue
			}
		}
		if kv, ok := returned[name]; !ok || kv != w.GetVersion() {
			res = append(res, w)
			returned[name] = w.GetVersion()
		}
	}
	for _, name := range d.removed {
		if _, ok := returned[name]; ok {
			removed = append(removed, name)
			delete(returned, name)
		} else if _, sub := subscribed[name]; hadBase && (wildcard || sub) {
			removed = append(removed, name) // held through the old marker
		}
	}
	setBase(returned, v)
	returned[syncedKey] = v.version
	if len(res) == v.len() && len(v.base.list) == 0 {
		res = v.own.deltas
	}
	return res, removed
}
