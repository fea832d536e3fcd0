package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
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
	a := &attempt{start: r.opts.Now(), timings: map[string]float64{}}
	return r.reconcile(ctx, a, []reconcileStep{
		{"fetch", r.fetch},
		{"load", r.load},
		{"check", r.check},
		{"render", r.render},
		{"guard", r.guard},
		{"apply", r.apply},
	})
}

// reconcileStep is one named step. It does its work on the attempt and owns
// its condition: it marks it True itself, or returns the failure whose
// condition and reason say why, as Flux's reconcileFunc steps do.
type reconcileStep struct {
	name string
	run  func(ctx context.Context, a *attempt) *stepError
}

// attempt is one pass through the steps: a new revision, or (refresh) the
// live revision with new discovered endpoints.
type attempt struct {
	start   time.Time
	refresh bool
	rev     source.Revision
	// in is the pipeline's input; res its verdict, run once by the first
	// step that needs it (load for a revision, render for a refresh).
	in  pipeline.Input
	res *pipeline.Result
	// conds are the conditions the steps set, applied by summarize.
	conds   []conditionChange
	timings map[string]float64
	// done: fetch found nothing new, the remaining steps are skipped;
	// knownBad: and the newest revision is one that failed before.
	done, knownBad bool
	failed         *stepError
}

type conditionChange struct {
	typ, message string
}

// succeeded marks a step's condition True.
func (a *attempt) succeeded(typ, message string) {
	a.conds = append(a.conds, conditionChange{typ, message})
}

// what names the attempt in condition messages: the revision, and for a
// refresh what changed.
func (a *attempt) what() string {
	if a.refresh {
		return a.rev.Short + " (endpoints changed)"
	}
	return a.rev.Short
}

// reconcile runs steps in order until one fails or says it is done, then
// summarises every condition, Ready included, in one deferred place, so a
// verdict is always reported whichever way the steps end.
func (r *Reconciler) reconcile(ctx context.Context, a *attempt, steps []reconcileStep) (next time.Duration) {
	defer func() {
		if p := recover(); p != nil {
			panic(p) // a bug: not a verdict to summarise
		}
		next = r.summarize(a)
		if d := r.persistRetryIn(); d > 0 {
			next = min(next, d)
		}
		if a.failed == nil && !a.done && r.opts.OnApplied != nil {
			r.opts.OnApplied()
		}
	}()
	// A last good state that could not be written is retried first, so
	// every attempt reports whether the state dir is current.
	r.retryPersist()
	for _, s := range steps {
		t := time.Now()
		se := s.run(ctx, a)
		if _, ok := a.timings[s.name]; !ok {
			a.timings[s.name] = ms(time.Since(t))
		}
		if se != nil {
			se.step = s.name
			a.failed = se
			return
		}
		if a.done {
			return
		}
	}
	return
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fetch takes the newest revision from the source. A revision already
// served, or already found bad, ends the attempt: nothing new to do.
func (r *Reconciler) fetch(ctx context.Context, a *attempt) *stepError {
	rev, err := r.opts.Source.Latest(ctx)
	if err != nil {
		return &stepError{reason: ReasonFetchFailed, condition: ConditionFetched,
			transient: !source.Permanent(err), err: err}
	}
	a.rev = rev
	a.succeeded(ConditionFetched, "fetched "+rev.Short)
	r.mu.RLock()
	// After a restore the live revision is served but not loaded: run it
	// through the steps once more (same content, same versions, nothing
	// pushed) so endpoint changes and drift have its mesh.
	unchanged := rev.ID == r.servedID() && r.live != nil
	a.knownBad = rev.ID == r.failedID
	r.mu.RUnlock()
	if unchanged || a.knownBad {
		// Nothing new: keep serving, keep the verdict on a known bad revision.
		a.done = true
		return nil
	}
	r.log.Info("reconciling", "revision", rev.Short, "message", firstLine(rev.Message))
	var creds pipeline.CredentialNames
	if r.opts.Credentials != nil {
		creds = r.opts.Credentials
	}
	a.in = pipeline.Input{Files: rev.Files, Load: r.opts.Load, Endpoints: r.discovered, Credentials: creds, RenderCache: r.renders}
	if _, ok := r.opts.Discovery.(AddressSource); ok {
		a.in.Addresses = r.discoveredAddresses
	}
	return nil
}

// verdict runs the pipeline once per attempt: load, policies and render
// are judged by one function, the one validate and check call, and the
// steps below each report their part of its verdict.
func (r *Reconciler) verdict(ctx context.Context, a *attempt) *pipeline.Result {
	if a.res == nil {
		a.res = pipeline.Run(ctx, a.in)
		t := a.res.Timings
		// Reading the credential names is part of rendering, as before.
		if d, ok := t[pipeline.StepRender]; ok {
			t[pipeline.StepRender] = d + t[pipeline.StepCredentials]
		}
		for step, name := range map[string]string{pipeline.StepLoad: "load", pipeline.StepPolicies: "check", pipeline.StepRender: "render"} {
			if d, ok := t[step]; ok {
				a.timings[name] = ms(d)
			}
		}
	}
	return a.res
}

// failure turns the pipeline's verdict for one of its steps into the
// failure of the reconcile step that owns condition, or nil when that
// step passed.
func failure(res *pipeline.Result, step, condition, reason string) *stepError {
	if res.FailedStep != step {
		return nil
	}
	se := &stepError{reason: reason, condition: condition, transient: res.Transient, err: res.Err, diags: res.Diagnostics}
	if se.err == nil {
		se.err = errors.New(res.Summary())
	}
	return se
}

// load reports the load part of the verdict: the repository parses and
// fits the schema.
func (r *Reconciler) load(ctx context.Context, a *attempt) *stepError {
	if se := failure(r.verdict(ctx, a), pipeline.StepLoad, ConditionLoaded, ReasonLoadFailed); se != nil {
		return se
	}
	a.succeeded(ConditionLoaded, "")
	return nil
}

// check reports the policies part of the verdict.
func (r *Reconciler) check(ctx context.Context, a *attempt) *stepError {
	if se := failure(r.verdict(ctx, a), pipeline.StepPolicies, ConditionChecked, ReasonCheckFailed); se != nil {
		return se
	}
	a.succeeded(ConditionChecked, "")
	return nil
}

// render reports the render part of the verdict (with the credentials
// serve has and the endpoints discovery has now).
func (r *Reconciler) render(ctx context.Context, a *attempt) *stepError {
	res := r.verdict(ctx, a)
	if se := failure(res, pipeline.StepRender, ConditionRendered, ReasonRenderFailed); se != nil {
		return se
	}
	a.succeeded(ConditionRendered, fmt.Sprintf("rendered %d proxy classes of %s", len(res.Bundle.Classes()), a.what()))
	return nil
}

// apply serves the bundle and keeps it as the last good state.
func (r *Reconciler) apply(_ context.Context, a *attempt) *stepError {
	in, b := a.res.Render, a.res.Bundle
	base, plan, se := r.serve(a.rev.ID, in, b)
	if se != nil {
		return se
	}
	if !a.refresh {
		r.persist(a.rev, base, plan, discovered{in.Endpoints, in.Addresses})
	} else {
		r.mu.RLock()
		lg := r.lastGood
		r.mu.RUnlock()
		if lg != nil && lg.Revision == a.rev.ID {
			// The state dir keeps the last known endpoints, so a restart
			// with Kubernetes unreachable serves them.
			r.persistUpdate(lg, base, plan, discovered{in.Endpoints, in.Addresses})
		}
	}
	a.succeeded(ConditionApplied, "serving "+a.what())
	return nil
}

// serve hands a rendered bundle to the xDS server: render's snapshot as it
// is (every config carries its content version, so the server skips each
// unchanged class in O(1)) with the secrets render planned overlaid,
// applied; then it records what is live. It returns the update without
// secrets and the secrets plan, which the state file keeps. A new revision
// and new discovered endpoints both go through it.
func (r *Reconciler) serve(revision string, in render.Input, b *render.Bundle) (xds.Update, map[string]state.ClassSecrets, *stepError) {
	base, plan := reuse(r.served, b.Update(revision)), b.Secrets()
	u, err := r.withSecrets(base, plan)
	if err != nil {
		// The CA or a credential file failed, not the revision.
		return xds.Update{}, nil, &stepError{reason: ReasonApplyFailed, condition: ConditionApplied, transient: true, err: err}
	}
	if err := r.opts.Server.Apply(u); err != nil {
		return xds.Update{}, nil, &stepError{reason: ReasonApplyFailed, condition: ConditionApplied, err: err}
	}
	r.served = base
	r.setServed(u)
	r.mu.Lock()
	r.live = &liveInput{revision: revision, mesh: in.Mesh, endpoints: in.Endpoints, addresses: in.Addresses, credentials: in.Credentials}
	r.hist.served(revision, b)
	r.mu.Unlock()
	return base, plan, nil
}

// summarize is the one place an attempt's outcome is recorded: the
// conditions its steps set, the failed step's condition, Ready, Stalled
// and Reconciling, the last attempt, metrics and the log. It returns the
// delay before the next attempt.
func (r *Reconciler) summarize(a *attempt) time.Duration {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.settled = true
	for _, c := range a.conds {
		r.conds.set(now, c.typ, true, ReasonSucceeded, c.message)
	}
	r.persistConditionLocked(now)
	switch {
	case a.done:
		r.retries = 0
		r.summarizeLocked(now, a.knownBad, false)
		return r.opts.Interval
	case a.refresh:
		// The live revision with new endpoints: a failure keeps the
		// previous endpoints serving and says so in Rendered or Applied;
		// a known bad newer revision stays the reason Ready is False.
		result := "applied"
		if se := a.failed; se != nil {
			result = "failed"
			r.conds.set(now, se.condition, false, se.reason, se.err.Error()+" (endpoints changed)")
			r.log.Error("could not apply discovered endpoints; keeping the previous ones", "step", se.step, "err", se.err)
		} else {
			r.log.Info("applied discovered endpoints", "revision", a.rev.Short, "took", now.Sub(a.start).Round(time.Millisecond))
		}
		r.metrics.endpointPushes.WithLabelValues(result).Inc()
		r.summarizeLocked(now, r.failedID != "", r.retries > 0)
		return r.opts.Interval
	case a.failed == nil:
		r.failedID, r.retries = "", 0
		capped, total := capDiagnostics(a.res.Diagnostics)
		info := revisionInfo(a.rev)
		info.AppliedAt = now
		r.status.Live = &info
		r.hist.record(info)
		r.hist.liveTests, r.hist.failedTests = testRun(a.rev.ID, a.res), nil
		r.status.LastAttempt = &apiv1.Attempt{
			Revision: revisionInfo(a.rev), StartedAt: a.start, Result: apiv1.AttemptApplied,
			Diagnostics: capped, DiagnosticsTotal: total, TimingsMillis: a.timings,
		}
		r.summarizeLocked(now, false, false)
		r.metrics.observe("applied", now.Sub(a.start))
		r.metrics.success(now)
		r.metrics.revision(a.rev.ID)
		r.log.Info("applied", "revision", a.rev.Short, "duration", now.Sub(a.start).Round(time.Millisecond),
			"warnings", a.res.Diagnostics.Count(model.SeverityWarning))
		return r.opts.Interval
	}
	se := a.failed
	if a.rev.ID != "" {
		capped, total := capDiagnostics(se.diags)
		r.status.LastAttempt = &apiv1.Attempt{
			Revision: revisionInfo(a.rev), StartedAt: a.start, Result: apiv1.AttemptFailed, FailedStep: se.step,
			Error: se.err.Error(), Diagnostics: capped, DiagnosticsTotal: total, TimingsMillis: a.timings,
		}
		r.hist.failedTests = testRun(a.rev.ID, a.res)
	}
	// Steps before the failed one marked themselves True; the failed one
	// says why; those after it are unknown for this revision, so they
	// keep their last value.
	r.conds.set(now, se.condition, false, se.reason, se.err.Error())
	r.metrics.observe("failed", now.Sub(a.start))
	r.metrics.failure(se.step)
	next := r.opts.Interval
	if se.transient {
		r.retries++
		next = r.backoff(r.retries)
		r.log.Warn("reconcile failed, will retry", "step", se.step, "err", se.err, "retry_in", next.Round(time.Millisecond))
	} else {
		r.failedID = a.rev.ID
		r.retries = 0
		r.log.Error("revision rejected; serving the last good one", "step", se.step, "revision", a.rev.Short, "err", se.err)
	}
	r.summarizeLocked(now, !se.transient, se.transient)
	return next
}

// summarizeLocked refreshes Ready/Stalled/Reconciling; r.mu must be held.
// A pending persist retry is work in progress: Reconciling stays True.
func (r *Reconciler) summarizeLocked(now time.Time, stalled, reconciling bool) {
	r.conds.summarize(now, r.servedID() != "", stalled, reconciling || r.persistErr != nil)
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
