package drift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
)

// ErrNotFound is what a Writer's Read returns when the branch or the file
// does not exist yet.
var ErrNotFound = errors.New("not found")

// Writer puts the report file on the status branch. Implementations push
// without force and re-apply on top of concurrent commits; same tells them
// whether the file they find already means what they were asked to write.
type Writer interface {
	Write(ctx context.Context, path string, content []byte, message string, same func(current []byte) bool) (commit string, committed bool, err error)
	Read(ctx context.Context, path string) ([]byte, error)
}

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	// Cluster names this control plane's report (status/<cluster>.yaml).
	Cluster string
	// Collect gathers the observations; it is called on the Runner's goroutine.
	Collect func() Input
	// Interval between reports (default 30s); Trigger asks for one sooner.
	Interval time.Duration
	// Writer commits reports; nil only serves them.
	Writer Writer
	// Path of the report in the status branch (default status/<cluster>.yaml).
	Path string
	// IsLeader says whether this replica may write; nil means it is the
	// single writer (the documented flag for running outside Kubernetes).
	IsLeader func() bool
	// Settled says whether the control plane has a verdict yet (a first
	// reconcile finished or a state was restored); before that, reports
	// are neither served nor committed. Nil means always.
	Settled    func() bool
	Logger     *slog.Logger
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Runner builds a report every Interval (and on Trigger), serves the
// latest, and commits it when its meaning changed and this replica leads.
// Its state is owned by the Run goroutine; Report and Publish take copies.
type Runner struct {
	o       RunnerOptions
	log     *slog.Logger
	tracker *Tracker
	trigger chan struct{}
	metrics *runnerMetrics

	// committed is the report the branch holds, as far as we know; loaded
	// is false until it was read (at start and on gaining leadership).
	committed *Report
	loaded    bool

	mu      sync.RWMutex
	latest  *Report
	publish apiv1.DriftPublish
}

// NewRunner checks the options.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Collect == nil {
		return nil, errors.New("drift: Collect is required")
	}
	if o.Cluster == "" {
		o.Cluster = "default"
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Path == "" {
		o.Path = "status/" + o.Cluster + ".yaml"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	r := &Runner{o: o, log: o.Logger.With("component", "drift"), tracker: NewTracker(),
		trigger: make(chan struct{}, 1), metrics: newRunnerMetrics()}
	r.publish = apiv1.DriftPublish{Enabled: o.Writer != nil, Path: o.Path}
	if o.Registerer != nil {
		if err := o.Registerer.Register(r.metrics); err != nil {
			return nil, fmt.Errorf("register drift metrics: %w", err)
		}
	}
	return r, nil
}

// Trigger asks for a report now (after a reconcile); it never blocks.
func (r *Runner) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Report returns the latest report, nil before the first.
func (r *Runner) Report() *Report {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.latest
}

// Publish returns how committing goes.
func (r *Runner) Publish() apiv1.DriftPublish {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.publish
}

// Run reports at once, then every Interval and on Trigger, until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		if err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("could not commit the drift report; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		}
	}
}

// Once builds one report, serves it and, when this replica writes and the
// meaning changed, commits it. Run calls it; tests call it to step.
func (r *Runner) Once(ctx context.Context) error {
	if r.o.Settled != nil && !r.o.Settled() {
		return nil
	}
	now := r.o.Now()
	in := r.o.Collect()
	in.Now = now
	fs := Build(in)
	leader := r.o.Writer != nil && (r.o.IsLeader == nil || r.o.IsLeader())
	if leader && !r.loaded {
		// The branch's report carries first-seen times from before a
		// restart or from the previous leader: adopt them.
		if err := r.load(ctx); err != nil {
			r.setError(now, leader, err)
			return err
		}
	}
	r.tracker.Stamp(now, fs)
	mesh := ""
	if in.Mesh != nil {
		mesh = in.Mesh.Mesh.Name
	}
	rep := NewReport(r.o.Cluster, mesh, now, in.Revision, fs)
	r.metrics.observe(rep)
	r.mu.Lock()
	r.latest = rep
	r.publish.Leader = leader
	r.mu.Unlock()
	if !leader {
		r.loaded = false // re-read when leadership comes back
		return nil
	}
	if r.committed != nil && Same(r.committed, rep) {
		return nil
	}
	return r.commit(ctx, rep)
}

func (r *Runner) load(ctx context.Context) error {
	b, err := r.o.Writer.Read(ctx, r.o.Path)
	switch {
	case errors.Is(err, ErrNotFound):
		r.committed = nil
	case err != nil:
		return fmt.Errorf("read %s: %w", r.o.Path, err)
	default:
		prev, perr := Parse(b)
		if perr != nil {
			// A hand-edited or foreign file: overwrite it with ours.
			r.log.Warn("the committed drift report does not parse; it will be replaced", "path", r.o.Path, "err", perr)
			prev = nil
		}
		r.committed = prev
		r.tracker.Seed(prev)
	}
	r.loaded = true
	return nil
}

func (r *Runner) commit(ctx context.Context, rep *Report) error {
	content, err := rep.YAML()
	if err != nil {
		return fmt.Errorf("render drift report: %w", err)
	}
	msg := Message(r.committed, rep)
	same := func(current []byte) bool {
		cur, err := Parse(current)
		return err == nil && Same(cur, rep)
	}
	commit, committed, err := r.o.Writer.Write(ctx, r.o.Path, content, msg, same)
	now := r.o.Now()
	if err != nil {
		r.metrics.commits.WithLabelValues("error").Inc()
		r.setError(now, true, err)
		return err
	}
	r.committed = rep
	r.mu.Lock()
	r.publish.LastError, r.publish.LastErrorAt = "", time.Time{}
	if committed {
		r.publish.LastCommit, r.publish.LastCommitAt = commit, now
	}
	r.mu.Unlock()
	if committed {
		r.metrics.commits.WithLabelValues("committed").Inc()
		r.log.Info("committed drift report", "commit", source.ShortID(commit), "subject", oneLine(msg, maxSubject))
	}
	return nil
}

func (r *Runner) setError(now time.Time, leader bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publish.Leader = leader
	r.publish.LastError, r.publish.LastErrorAt = err.Error(), now
}

// runnerMetrics are the drift gauges and counters.
type runnerMetrics struct {
	findings *prometheus.GaugeVec
	commits  *prometheus.CounterVec
}

func newRunnerMetrics() *runnerMetrics {
	return &runnerMetrics{
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gitmesh_drift_findings",
			Help: "Findings in the latest drift report, by severity."}, []string{"severity"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gitmesh_drift_commits_total",
			Help: "Drift report commits, by result (committed, error)."}, []string{"result"}),
	}
}

func (m *runnerMetrics) observe(rep *Report) {
	m.findings.WithLabelValues(string(SeverityError)).Set(float64(rep.Summary.Errors))
	m.findings.WithLabelValues(string(SeverityWarning)).Set(float64(rep.Summary.Warnings))
	m.findings.WithLabelValues(string(SeverityInfo)).Set(float64(rep.Summary.Infos))
}

func (m *runnerMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.findings.Describe(ch)
	m.commits.Describe(ch)
}

func (m *runnerMetrics) Collect(ch chan<- prometheus.Metric) {
	m.findings.Collect(ch)
	m.commits.Collect(ch)
}
