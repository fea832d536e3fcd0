// Package reconciler is gitmesh's control loop: it takes revisions from a
// source, runs them through fetch → load → check → render → apply, serves
// the good ones over xDS and keeps the last good one serving (and on disk)
// when a new one fails. Sub-packages hold the parts that talk to the world:
// source (Git, directories), xds (the ADS server), state (the last good
// state on disk), webhook (push hooks) and api (the read-only status API).
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema"
)

// Applier serves an update; *xds.Server is one.
type Applier interface {
	Apply(u xds.Update) error
}

// Options configure a Reconciler.
type Options struct {
	Source source.Source
	// Watch, when set, returns a channel that signals the source changed
	// (a directory watch); Git sources rely on Interval and webhooks.
	Watch  func(ctx context.Context) <-chan struct{}
	Server Applier
	// StateDir holds the last good state; "" keeps it in memory only.
	StateDir string
	// Interval between polls of the source (default 1m).
	Interval time.Duration
	// RetryBase and RetryMax bound the jittered exponential backoff after
	// transient failures (defaults 1s and 1m).
	RetryBase, RetryMax time.Duration
	Load                schema.Options
	Logger              *slog.Logger
	Registerer          prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// CA issues each class's workload certificate (SDS `default`) and
	// provides the trust bundle (`ROOTCA`); nil serves neither.
	CA *ca.CA
	// WorkloadTTL is the lifetime of issued certificates; 0 means the CA's.
	WorkloadTTL time.Duration
	// Credentials serves gateway credentials named by credentialName; when
	// set, a revision naming one it lacks fails to render. Nil serves none.
	Credentials CredentialSource
	// WithholdKeys leaves every private key (the `default` secrets and
	// gateway server keys) out of the served update: set when the xDS port
	// is plaintext, so no key ever crosses it. ROOTCA and client CAs are
	// still served.
	WithholdKeys bool

	// Discovery supplies endpoints found at run time (Kubernetes) for
	// services with `discovery: kubernetes`; nil serves Git's endpoints
	// only. Its changes re-render and apply without a new revision.
	Discovery EndpointSource
	// EndpointDebounce gathers endpoint churn into one push (default 100ms,
	// Istio's debounce).
	EndpointDebounce time.Duration
	// MaxClassLoss is the share of the live proxy classes, in percent, a
	// new revision may remove; one that removes more is refused unless it
	// sets mesh.allowClassLoss (guard.go). 0 means DefaultMaxClassLoss;
	// 100 turns the guard off.
	MaxClassLoss float64
	// OnApplied is called on the loop goroutine after every apply (a new
	// revision or new endpoints), e.g. to rebuild the drift report.
	OnApplied func()
}

// Reconciler runs the loop. Its state is guarded by mu and changed only by
// the loop goroutine; readers (status API) take copies.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	trigger chan struct{}
	// renders carries what one render built to the next revision's (and
	// endpoint refresh's) render, so an edit re-renders what it touches.
	renders *render.Cache

	mu       sync.RWMutex
	status   apiv1.Status
	conds    conditions
	failedID string // the newest revision, known bad: not retried until a new one
	retries  int
	lastGood *state.LastGood
	// served is the last update applied from a bundle, without secrets:
	// the next one reuses its objects where versions hold (update.go).
	// Only the loop goroutine reads or writes it.
	served xds.Update
	// live is what the served update was rendered from: the mesh, the
	// discovered endpoints and the revision. Written by the loop goroutine
	// under mu; nil after a restore from disk until a revision is loaded.
	live *liveInput
	// saved is what discovery contributed to the last good revision, read
	// from the state dir: served until discovery has synced after a
	// restart, so an unreachable API server neither drains every service
	// nor moves a VIP to an allocated one.
	saved discovered
	// settled is true once a reconcile finished (either way) or a state
	// was restored: before that, there is nothing to report drift against.
	settled bool
	// rotationErr is the last certificate rotation failure ("" when the
	// last one succeeded), for drift.
	rotationErr string

	// secrets is owned by the loop goroutine (Restore, ReconcileOnce and
	// RotateSecrets all run on it); ids is what admission reads from
	// stream goroutines.
	secrets *secretStore
	ids     atomic.Pointer[map[string]string]
	// persistErr is the last failure to write the state dir, nil after a
	// success; persistRetries counts failures in a row, and unsaved holds
	// the discovered endpoints that were not written. Owned by the loop
	// goroutine (persist.go); status sees them through Persisted.
	persistErr     error
	persistRetries int
	unsaved        discovered
	// hist is the applied revisions and the live and previous bundles,
	// for the console (history.go).
	hist history
	// origin is the source's repository, branch and path (or directory),
	// recorded in the state dir and checked on restore.
	origin state.Origin
}

// New checks the options and returns a Reconciler that serves nothing
// until Restore or Run.
func New(opts Options) (*Reconciler, error) {
	if opts.Source == nil || opts.Server == nil {
		return nil, errors.New("reconciler: a source and a server are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxClassLoss <= 0 {
		opts.MaxClassLoss = DefaultMaxClassLoss
	}
	if opts.EndpointDebounce <= 0 {
		opts.EndpointDebounce = 100 * time.Millisecond
	}
	if opts.Load.Cache == nil {
		// Revisions of one source differ in a few files: the cache makes a
		// one-service commit re-check one entity, not the whole mesh.
		opts.Load.Cache = schema.NewCache()
	}
	r := &Reconciler{
		opts:    opts,
		log:     opts.Logger.With("component", "reconciler"),
		metrics: newMetrics(),
		trigger: make(chan struct{}, 1),
		renders: render.NewCache(),
	}
	if o, ok := opts.Source.(interface{ Origin() source.Origin }); ok {
		r.origin = state.Origin(o.Origin())
	}
	r.secrets = newSecretStore(opts, r.metrics, r.log)
	r.status.Source = opts.Source.String()
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(r.metrics); err != nil {
			return nil, fmt.Errorf("register reconciler metrics: %w", err)
		}
	}
	r.conds.summarize(opts.Now(), false, false, true)
	r.status.Conditions = r.conds
	return r, nil
}

// Trigger asks for a reconcile now (a push webhook fired). It never blocks;
// triggers that arrive while one is pending are coalesced.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Status returns a copy of the current status.
func (r *Reconciler) Status() apiv1.Status {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.status
	s.Conditions = append(s.Conditions[:0:0], r.conds...)
	return s
}

// Settled reports whether the loop has a verdict yet: a state restored or
// a reconcile finished, successfully or not. Drift reports wait for it.
func (r *Reconciler) Settled() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.settled
}

// Ready reports whether a good configuration is being served.
func (r *Reconciler) Ready() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.servedID() != ""
}

// Restore serves the last good state from the state dir, so that a restart
// with Git unreachable serves the same config with the same versions. It
// returns state.ErrNotFound when there is none, and an error wrapping
// state.ErrOtherOrigin when the state dir holds another source's state
// (another repository, branch or path): serving that would be silently
// wrong, so the caller starts empty and waits for its own source.
func (r *Reconciler) Restore() error {
	if r.opts.StateDir == "" {
		return state.ErrNotFound
	}
	lg, err := state.LoadFor(r.opts.StateDir, r.origin)
	if errors.Is(err, state.ErrOtherOrigin) {
		// Status says why nothing is served until the source's first good
		// revision (which then replaces the file).
		now := r.opts.Now()
		r.mu.Lock()
		r.conds.set(now, ConditionApplied, false, ReasonOtherSourceState, err.Error())
		r.summarizeLocked(now, false, true)
		r.mu.Unlock()
	}
	if err != nil {
		return err
	}
	r.loadDiscovered()
	u, err := r.withSecrets(lg.Update, lg.Secrets)
	if err != nil {
		return fmt.Errorf("restore %s: %w", lg.Revision, err)
	}
	if err := r.opts.Server.Apply(u); err != nil {
		return fmt.Errorf("restore %s: %w", lg.Revision, err)
	}
	r.setServed(u)
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastGood = lg
	r.settled = true
	r.status.Live = &apiv1.Revision{
		ID: lg.Revision, Short: source.ShortID(lg.Revision), Message: lg.Message, Author: lg.Author,
		Committed: lg.Committed, AppliedAt: lg.AppliedAt, Restored: true,
	}
	r.hist.record(*r.status.Live)
	r.conds.set(now, ConditionApplied, true, ReasonRestoredFromDisk, "restored the last good revision "+source.ShortID(lg.Revision)+" from the state dir")
	r.persistConditionLocked(now)
	r.summarizeLocked(now, false, true)
	r.metrics.revision(lg.Revision)
	r.log.Info("restored last good state", "revision", source.ShortID(lg.Revision), "classes", len(lg.Update.Classes))
	return nil
}

// Run reconciles at once, then on every trigger, change signal or interval
// tick, until ctx ends. Transient failures are retried with jittered
// exponential backoff; a bad revision waits for a new one. Certificate
// rotation runs here too, when the earliest certificate is due, so the one
// goroutine that owns the served state is the only one changing it.
func (r *Reconciler) Run(ctx context.Context) error {
	var changes, endpoints <-chan struct{}
	if r.opts.Watch != nil {
		changes = r.opts.Watch(ctx)
	}
	if r.opts.Discovery != nil {
		endpoints = r.opts.Discovery.Changed()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	// debounce gathers endpoint churn; it is nil while nothing is pending.
	var debounce <-chan time.Time
	for {
		var (
			rotation *time.Timer
			rotate   <-chan time.Time
		)
		if due := r.secrets.due(); !due.IsZero() {
			rotation = time.NewTimer(max(due.Sub(r.opts.Now()), 0))
			rotate = rotation.C
		}
		action := "reconcile"
		select {
		case <-ctx.Done():
			return nil
		case <-rotate:
			action = "rotate"
		case <-endpoints:
			action = ""
			if debounce == nil {
				debounce = time.After(r.opts.EndpointDebounce)
			}
		case <-debounce:
			action, debounce = "endpoints", nil
		case <-timer.C:
		case <-r.trigger:
		case <-changes:
		}
		if rotation != nil {
			rotation.Stop()
		}
		switch action {
		case "rotate":
			r.RotateSecrets()
		case "endpoints":
			r.RefreshEndpoints()
			if d := r.persistRetryIn(); d > 0 {
				// Its save failed: retry it without waiting a whole interval.
				timer.Reset(d)
			}
		case "reconcile":
			timer.Reset(r.ReconcileOnce(ctx))
		}
	}
}

// backoff returns the delay before retry n (1-based): doubling from
// RetryBase up to RetryMax, with ±20% jitter so replicas do not retry in step.
func (r *Reconciler) backoff(n int) time.Duration {
	d := r.opts.RetryBase
	for i := 1; i < n && d < r.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, r.opts.RetryMax)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
