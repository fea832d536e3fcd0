package reconciler

import (
	"time"

	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// Persisting the last good state is part of serving it: a revision the
// proxies have but the state dir lacks is lost at the next restart, which
// then serves an older one. So a failed write (read-only disk, disk full)
// is not only logged: the Persisted condition goes False with reason
// PersistFailed, which makes Ready False; gitmesh_state_persist_failures_total
// counts it; and the write is retried with the loop's backoff until it
// succeeds. The applied revision keeps serving meanwhile: un-applying it
// would punish the proxies for the control plane's disk.

// persist records a new revision as the last good state and saves it.
func (r *Reconciler) persist(rev source.Revision, u xds.Update, plan map[string]state.ClassSecrets, d discovered) {
	lg := &state.LastGood{
		Revision: rev.ID, Message: firstLine(rev.Message), Author: rev.Author,
		Committed: rev.Time, AppliedAt: r.opts.Now(), Update: u, Secrets: plan, Origin: r.origin,
	}
	r.mu.Lock()
	r.lastGood = lg
	r.mu.Unlock()
	r.save(lg, d)
}

// persistUpdate saves the same revision with a new update (new discovered
// endpoints).
func (r *Reconciler) persistUpdate(prev *state.LastGood, u xds.Update, plan map[string]state.ClassSecrets, d discovered) {
	lg := *prev
	lg.Update, lg.Secrets, lg.Origin = u, plan, r.origin
	r.mu.Lock()
	r.lastGood = &lg
	r.mu.Unlock()
	r.save(&lg, d)
}

// save writes lg and what was discovered to the state dir and records the
// outcome. On failure it keeps what to write, for retryPersist.
func (r *Reconciler) save(lg *state.LastGood, d discovered) {
	if r.opts.StateDir == "" {
		return
	}
	err := state.Save(r.opts.StateDir, lg)
	if err == nil {
		err = r.saveDiscovered(d)
	}
	if err == nil {
		if r.persistErr != nil {
			r.log.Info("the state dir is writable again; last good state saved", "revision", source.ShortID(lg.Revision))
		}
		r.persistErr, r.persistRetries, r.unsaved = nil, 0, discovered{}
		return
	}
	r.persistErr, r.unsaved = err, d
	r.persistRetries++
	r.metrics.persistFailures.Inc()
	r.log.Error("could not persist the last good state; a restart would serve an older revision; will retry",
		"revision", source.ShortID(lg.Revision), "err", err, "retry_in", r.persistRetryIn().Round(time.Millisecond))
}

// retryPersist writes the last good state again after a failure. It runs
// at the start of every attempt (the loop wakes for it with backoff).
func (r *Reconciler) retryPersist() {
	if r.persistErr == nil {
		return
	}
	r.mu.RLock()
	lg := r.lastGood
	r.mu.RUnlock()
	if lg != nil {
		r.save(lg, r.unsaved)
	}
}

// persistRetryIn is the delay before the next persist retry, 0 when none
// is pending.
func (r *Reconciler) persistRetryIn() time.Duration {
	if r.persistErr == nil {
		return 0
	}
	return r.backoff(r.persistRetries)
}

// persistConditionLocked sets Persisted from the last save; r.mu must be
// held. Without a state dir there is no such condition.
func (r *Reconciler) persistConditionLocked(now time.Time) {
	switch {
	case r.opts.StateDir == "" || r.lastGood == nil:
	case r.persistErr != nil:
		r.conds.set(now, ConditionPersisted, false, ReasonPersistFailed, r.persistErr.Error())
	default:
		r.conds.set(now, ConditionPersisted, true, ReasonSucceeded, "the state dir holds "+source.ShortID(r.lastGood.Revision))
	}
}
