package drift

import "time"

// Tracker remembers when each finding was first seen, so a finding keeps
// its first-seen time from report to report (and across restarts, when
// seeded from the last committed report). A finding that goes away and
// comes back is new again. It is not safe for concurrent use.
type Tracker struct {
	first map[string]time.Time
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{first: map[string]time.Time{}} }

// Seed takes first-seen times from a previous report, for findings not
// tracked yet.
func (t *Tracker) Seed(r *Report) {
	if r == nil {
		return
	}
	for _, f := range r.Findings {
		if _, ok := t.first[f.key()]; !ok && !f.FirstSeen.IsZero() {
			t.first[f.key()] = f.FirstSeen
		}
	}
}

// Stamp sets FirstSeen on fs (in place) and forgets findings not in fs.
func (t *Tracker) Stamp(now time.Time, fs []Finding) {
	now = now.UTC().Truncate(time.Second)
	next := make(map[string]time.Time, len(fs))
	for i := range fs {
		k := fs[i].key()
		at, ok := t.first[k]
		if !ok {
			at = now
		}
		next[k] = at
		fs[i].FirstSeen = at
	}
	t.first = next
}
