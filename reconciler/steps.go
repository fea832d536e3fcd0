package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/gitmesh/gitmesh/policies"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// stepError is a failed step: which one, its condition reason, whether
// retrying the same revision can help, and the findings behind it.
type stepError struct {
	step      string
	reason    string
	condition string
	transient bool
	err       error
	diags     model.Diagnostics
}

func (e *stepError) Error() string { return e.step + ": " + e.err.Error() }

// ReconcileOnce runs the steps once and returns how long to wait before the
// next attempt. Run calls it; tests call it directly to step the loop.
func (r *Reconciler) ReconcileOnce(ctx context.Context) time.Duration {
	start := r.opts.Now()
	timings := map[string]float64{}
	timed := func(step string, f func() error) error {
		t := time.Now()
		err := f()
		timings[step] = float64(time.Since(t).Microseconds()) / 1000
		return err
	}

	var rev source.Revision
	err := timed("fetch", func() (err error) {
		rev, err = r.opts.Source.Latest(ctx)
		return err
	})
	if err != nil {
		return r.failed(start, source.Revision{}, timings, &stepError{
			step: "fetch", reason: ReasonFetchFailed, condition: ConditionFetched,
			transient: !source.Permanent(err), err: err,
		})
	}

	r.mu.Lock()
	// After a restore the live revision is served but not loaded: run it
	// through the steps once more (same content, same versions, nothing
	// pushed) so endpoint changes and drift have its mesh.
	unchanged := rev.ID == r.servedID() && r.live != nil
	knownBad := rev.ID == r.failedID
	if unchanged || knownBad {
		// Nothing new: keep serving, keep the verdict on a known bad revision.
		now := r.opts.Now()
		r.retries, r.settled = 0, true
		r.conds.set(now, ConditionFetched, true, ReasonSucceeded, "fetched "+rev.Short)
		r.summarizeLocked(now, knownBad, false)
		r.mu.Unlock()
		return r.opts.Interval
	}
	r.mu.Unlock()

	r.log.Info("reconciling", "revision", rev.Short, "message", firstLine(rev.Message))
	var (
		mesh   *model.Mesh
		diags  model.Diagnostics
		bundle *render.Bundle
		input  render.Input
	)
	steps := []struct {
		name string
		run  func() *stepError
	}{
		{"load", func() *stepError {
			m, ds, err := schema.Load(ctx, rev.Files, r.opts.Load)
			diags = ds
			if err != nil {
				return &stepError{reason: ReasonLoadFailed, condition: ConditionLoaded, err: err}
			}
			if ds.HasErrors() || m == nil {
				return &stepError{reason: ReasonLoadFailed, condition: ConditionLoaded, diags: ds,
					err: fmt.Errorf("%d errors, first: %s", ds.Count(model.SeverityError), firstError(ds))}
			}
			mesh = m
			return nil
		}},
		{"check", func() *stepError {
			diags = append(diags, policies.Check(mesh)...)
			diags.Sort()
			if diags.HasErrors() {
				return &stepError{reason: ReasonCheckFailed, condition: ConditionChecked, diags: diags,
					err: fmt.Errorf("%d errors, first: %s", diags.Count(model.SeverityError), firstError(diags))}
			}
			return nil
		}},
		{"render", func() *stepError {
			in := render.Input{Mesh: mesh, Endpoints: r.discovered(mesh)}
			if r.opts.Credentials != nil {
				names, err := r.opts.Credentials.Names()
				if err != nil {
					return &stepError{reason: ReasonRenderFailed, condition: ConditionRendered, transient: true, err: err}
				}
				in.Credentials = names
			}
			b, err := render.Render(in)
			if err != nil {
				rd, _ := err.(model.Diagnostics)
				return &stepError{reason: ReasonRenderFailed, condition: ConditionRendered, diags: append(diags, rd...), err: err}
			}
			bundle, input = b, in
			return nil
		}},
		{"apply", func() *stepError {
			base, plan, se := r.serve(rev.ID, input, bundle)
			if se != nil {
				return se
			}
			r.persist(rev, base, plan)
			r.saveEndpoints(input.Endpoints)
			return nil
		}},
	}
	for _, s := range steps {
		var se *stepError
		_ = timed(s.name, func() error {
			se = s.run()
			if se != nil {
				return se
			}
			return nil
		})
		if se != nil {
			se.step = s.name
			return r.failed(start, rev, timings, se)
		}
	}
	next := r.applied(start, rev, timings, diags)
	if r.opts.OnApplied != nil {
		r.opts.OnApplied()
	}
	return next
}

// serve hands a rendered bundle to the xDS server: the update reusing every
// unchanged class, the secrets overlaid, applied; then it records what is
// live. It returns the update without secrets and the secrets plan, which
// the state file keeps. A new revision and new discovered endpoints both
// go through it.
func (r *Reconciler) serve(revision string, in render.Input, b *render.Bundle) (xds.Update, map[string]state.ClassSecrets, *stepError) {
	base := r.toUpdate(revision, b)
	plan, err := planSecrets(in.Mesh, b.Classes())
	if err != nil {
		return xds.Update{}, nil, &stepError{reason: ReasonApplyFailed, condition: ConditionApplied, err: err}
	}
	u, err := r.withSecrets(base, plan)
	if err != nil {
		// The CA or a credential file failed, not the revision.
		return xds.Update{}, nil, &stepError{reason: ReasonApplyFailed, condition: ConditionApplied, transient: true, err: err}
	}
	if err := r.opts.Server.Apply(u); err != nil {
		return xds.Update{}, nil, &stepError{reason: ReasonApplyFailed, condition: ConditionApplied, err: err}
	}
	r.setServed(u)
	r.mu.Lock()
	r.live = &liveInput{revision: revision, mesh: in.Mesh, endpoints: in.Endpoints, credentials: in.Credentials}
	r.mu.Unlock()
	return base, plan, nil
}

func firstError(ds model.Diagnostics) string {
	for _, d := range ds {
		if d.Severity == model.SeverityError {
			return d.Error()
		}
	}
	return "none"
}

// persist saves the new last good state. A failure to save is logged and
// shown in status but does not un-apply: the proxies already have it.
func (r *Reconciler) persist(rev source.Revision, u xds.Update, plan map[string]state.ClassSecrets) {
	lg := &state.LastGood{
		Revision: rev.ID, Message: firstLine(rev.Message), Author: rev.Author,
		Committed: rev.Time, AppliedAt: r.opts.Now(), Update: u, Secrets: plan,
	}
	r.mu.Lock()
	r.lastGood = lg
	r.mu.Unlock()
	r.save(lg)
}

// persistUpdate saves the same revision with a new update (new discovered
// endpoints).
func (r *Reconciler) persistUpdate(prev *state.LastGood, u xds.Update, plan map[string]state.ClassSecrets) {
	lg := *prev
	lg.Update, lg.Secrets = u, plan
	r.mu.Lock()
	r.lastGood = &lg
	r.mu.Unlock()
	r.save(&lg)
}

func (r *Reconciler) save(lg *state.LastGood) {
	if r.opts.StateDir == "" {
		return
	}
	if err := state.Save(r.opts.StateDir, lg); err != nil {
		r.log.Error("could not persist the last good state", "err", err)
	}
}

func (r *Reconciler) applied(start time.Time, rev source.Revision, timings map[string]float64, diags model.Diagnostics) time.Duration {
	now := r.opts.Now()
	capped, total := capDiagnostics(diags)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failedID, r.retries, r.settled = "", 0, true
	info := revisionInfo(rev)
	info.AppliedAt = now
	r.status.Live = &info
	r.status.LastAttempt = &apiv1.Attempt{
		Revision: revisionInfo(rev), StartedAt: start, Result: apiv1.AttemptApplied,
		Diagnostics: capped, DiagnosticsTotal: total, TimingsMillis: timings,
	}
	for _, c := range stepConditions {
		r.conds.set(now, c, true, ReasonSucceeded, "")
	}
	r.conds.set(now, ConditionApplied, true, ReasonSucceeded, "serving "+rev.Short)
	r.summarizeLocked(now, false, false)
	r.metrics.observe("applied", now.Sub(start))
	r.metrics.success(now)
	r.metrics.revision(rev.ID)
	r.log.Info("applied", "revision", rev.Short, "duration", now.Sub(start).Round(time.Millisecond), "warnings", diags.Count(model.SeverityWarning))
	return r.opts.Interval
}

func (r *Reconciler) failed(start time.Time, rev source.Revision, timings map[string]float64, se *stepError) time.Duration {
	now := r.opts.Now()
	capped, total := capDiagnostics(se.diags)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = true
	if rev.ID != "" {
		r.status.LastAttempt = &apiv1.Attempt{
			Revision: revisionInfo(rev), StartedAt: start, Result: apiv1.AttemptFailed, FailedStep: se.step,
			Error: se.err.Error(), Diagnostics: capped, DiagnosticsTotal: total, TimingsMillis: timings,
		}
	}
	// Steps before the failed one passed; the failed one says why; those
	// after it are unknown for this revision, so they keep their last value.
	for _, c := range stepConditions {
		if c == se.condition {
			break
		}
		r.conds.set(now, c, true, ReasonSucceeded, "")
	}
	r.conds.set(now, se.condition, false, se.reason, se.err.Error())
	r.metrics.observe("failed", now.Sub(start))
	r.metrics.failure(se.step)

	next := r.opts.Interval
	if se.transient {
		r.retries++
		next = r.backoff(r.retries)
		r.log.Warn("reconcile failed, will retry", "step", se.step, "err", se.err, "retry_in", next.Round(time.Millisecond))
	} else {
		r.failedID = rev.ID
		r.retries = 0
		r.log.Error("revision rejected; serving the last good one", "step", se.step, "revision", rev.Short, "err", se.err)
	}
	r.summarizeLocked(now, !se.transient, se.transient)
	return next
}

// summarizeLocked refreshes Ready/Stalled/Reconciling; r.mu must be held.
func (r *Reconciler) summarizeLocked(now time.Time, stalled, reconciling bool) {
	r.conds.summarize(now, r.servedID() != "", stalled, reconciling)
	r.status.Conditions = r.conds
	r.status.Ready = r.conds.isTrue(ConditionReady)
}

// setServed records how many classes and distinct resources are served.
// Counting walks every class's lists, which takes seconds for a large
// unscoped mesh, so it runs without r.mu: status readers never wait on it.
func (r *Reconciler) setServed(u xds.Update) {
	seen := map[*xds.Resource]bool{}
	shared := map[*xds.ClassConfig]bool{}
	count := func(c *xds.ClassConfig) {
		for _, list := range c.Resources {
			for _, res := range list {
				seen[res] = true
			}
		}
	}
	for _, c := range u.Classes {
		count(c)
		// A shared layer is counted once, however many classes use it.
		if c.Shared != nil && !shared[c.Shared] {
			shared[c.Shared] = true
			count(c.Shared)
		}
	}
	r.mu.Lock()
	r.status.Classes = len(u.Classes)
	r.status.Resources = len(seen)
	r.mu.Unlock()
}
