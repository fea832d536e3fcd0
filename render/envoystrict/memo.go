package envoystrict

import routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

// Memo carries what checks learnt about resources to later checks that
// see the same Resource values again (an incremental render reuses the
// resources an edit did not touch, by pointer). It keeps a resource's
// facts only when walking it found nothing: the walk's rules read the
// resource alone, so walking the same resource again would find nothing
// again and learn the same facts. Everything that depends on more than
// the resource (its secrets against what is served, references and
// addresses within a class) is checked afresh by every Checker, so a
// verdict with a Memo is the verdict without one.
//
// A Memo belongs to one Checker at a time. Pass the previous check's Memo
// to NewMemo for the next: the new one remembers only the resources its
// check saw, so memory stays bounded by one check.
type Memo struct {
	prev, next map[*Resource]*facts
	// vprev and vnext are the same for virtual hosts, which route
	// configurations share (an incremental render rebuilds the one route
	// configuration an edit touches around the unchanged virtual hosts).
	vprev, vnext map[*routev3.VirtualHost]*vhostFacts
}

// NewMemo returns a Memo that reuses what prev learnt (prev may be nil).
func NewMemo(prev *Memo) *Memo {
	m := &Memo{next: map[*Resource]*facts{}, vnext: map[*routev3.VirtualHost]*vhostFacts{}}
	if prev != nil {
		m.prev, m.vprev = prev.next, prev.vnext
	}
	return m
}

// vhost returns a virtual host's facts from a clean walk.
func (m *Memo) vhost(vh *routev3.VirtualHost) (*vhostFacts, bool) {
	if m == nil {
		return nil, false
	}
	return carry(m.vprev, m.vnext, vh)
}

// putVHost remembers the facts of a clean walk of vh.
func (m *Memo) putVHost(vh *routev3.VirtualHost, v *vhostFacts) {
	if m != nil {
		m.vnext[vh] = v
	}
}

// get returns r's facts from a clean walk of an earlier or this check.
func (m *Memo) get(r *Resource) (*facts, bool) {
	if m == nil {
		return nil, false
	}
	return carry(m.prev, m.next, r)
}

// carry looks k up in this check's facts, else in the previous check's,
// which it then carries into this check's.
func carry[K comparable, V any](prev, next map[K]V, k K) (V, bool) {
	if v, ok := next[k]; ok {
		return v, true
	}
	v, ok := prev[k]
	if ok {
		next[k] = v
	}
	return v, ok
}

// put remembers the facts of a clean walk of r.
func (m *Memo) put(r *Resource, f *facts) {
	if m != nil {
		m.next[r] = f
	}
}
