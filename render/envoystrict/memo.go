package envoystrict

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
}

// NewMemo returns a Memo that reuses what prev learnt (prev may be nil).
func NewMemo(prev *Memo) *Memo {
	m := &Memo{next: map[*Resource]*facts{}}
	if prev != nil {
		m.prev = prev.next
	}
	return m
}

// get returns r's facts from a clean walk of an earlier or this check.
func (m *Memo) get(r *Resource) (*facts, bool) {
	if m == nil {
		return nil, false
	}
	if f, ok := m.next[r]; ok {
		return f, true
	}
	f, ok := m.prev[r]
	if ok {
		m.next[r] = f
	}
	return f, ok
}

// put remembers the facts of a clean walk of r.
func (m *Memo) put(r *Resource, f *facts) {
	if m != nil {
		m.next[r] = f
	}
}
