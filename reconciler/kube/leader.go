package kube

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// LeaderOptions configures a Leader. Durations of 0 take client-go's
// usual defaults (15 s lease, 10 s renew deadline, 2 s retry).
type LeaderOptions struct {
	// Namespace and Name name the coordination.k8s.io/v1 Lease.
	Namespace, Name string
	// Identity names this replica in the Lease; "" means hostname plus a
	// random suffix, so two processes on one host still differ.
	Identity string
	// LeaseDuration is how long others wait after the last renewal before
	// taking over a leader that vanished without releasing.
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps retrying a renewal before
	// it gives up leading.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew.
	RetryPeriod time.Duration
	// Logger receives leadership changes; nil discards them.
	Logger *slog.Logger
}

// Leader elects one writer among gitmesh replicas: only the replica that
// holds the Lease writes drift commits, so replicas never fight over Git.
type Leader struct {
	client  kubernetes.Interface
	opts    LeaderOptions
	log     *slog.Logger
	leading atomic.Bool
	changed chan struct{}

	mu      sync.Mutex
	elector *leaderelection.LeaderElector
	holder  string
}

// NewLeader checks o and fills its defaults.
func NewLeader(client kubernetes.Interface, o LeaderOptions) (*Leader, error) {
	if o.Namespace == "" || o.Name == "" {
		return nil, errors.New("leader election needs a lease namespace and name")
	}
	if o.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader identity: %w", err)
		}
		o.Identity = host + "_" + randomSuffix()
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	if o.LeaseDuration <= o.RenewDeadline {
		return nil, fmt.Errorf("lease duration %s must be longer than renew deadline %s", o.LeaseDuration, o.RenewDeadline)
	}
	l := &Leader{client: client, opts: o, log: o.Logger, changed: make(chan struct{}, 1)}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// Identity is this replica's name in the Lease.
func (l *Leader) Identity() string { return l.opts.Identity }

// IsLeader reports whether this replica holds the Lease now. Writers check
// it right before each write.
func (l *Leader) IsLeader() bool { return l.leading.Load() }

// Holder returns the identity of the current leader as last observed ("" if
// none yet), for status.
func (l *Leader) Holder() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.elector != nil {
		if h := l.elector.GetLeader(); h != "" {
			return h
		}
	}
	return l.holder
}

// Changed signals (coalesced, capacity 1) when this replica starts or stops
// leading, or observes a new leader.
func (l *Leader) Changed() <-chan struct{} { return l.changed }

// Run campaigns for the Lease until ctx ends, campaigning again whenever
// leadership is lost. When ctx ends while leading, the Lease is released
// so a successor need not wait for it to expire.
func (l *Leader) Run(ctx context.Context) {
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(l.log.Handler()))
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.opts.Namespace, Name: l.opts.Name},
		Client:     l.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.opts.Identity},
	}
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   l.opts.LeaseDuration,
			RenewDeadline:   l.opts.RenewDeadline,
			RetryPeriod:     l.opts.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            l.opts.Namespace + "/" + l.opts.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					l.leading.Store(true)
					l.log.Info("started leading", "lease", l.opts.Namespace+"/"+l.opts.Name, "identity", l.opts.Identity)
					l.signal()
				},
				OnStoppedLeading: func() {
					if l.leading.Swap(false) {
						l.log.Info("stopped leading", "lease", l.opts.Namespace+"/"+l.opts.Name, "identity", l.opts.Identity)
						l.signal()
					}
				},
				OnNewLeader: func(identity string) {
					l.mu.Lock()
					l.holder = identity
					l.mu.Unlock()
					l.log.Info("leader observed", "lease", l.opts.Namespace+"/"+l.opts.Name, "holder", identity)
					l.signal()
				},
			},
		})
		if err != nil {
			// The options were checked in NewLeader; this is a bug.
			l.log.Error("leader election config", "error", err)
			return
		}
		l.mu.Lock()
		l.elector = le
		l.mu.Unlock()
		le.Run(ctx)
		// Run returns when leadership is lost or ctx ends; OnStoppedLeading
		// has run, so IsLeader is already false.
		l.leading.Store(false)
		if ctx.Err() == nil {
			// Do not hammer the API server if it keeps failing.
			select {
			case <-ctx.Done():
			case <-time.After(l.opts.RetryPeriod):
			}
		}
	}
}

// signal notifies Changed without blocking.
func (l *Leader) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// randomSuffix returns 8 random characters for default identities.
func randomSuffix() string { return strings.ToLower(rand.Text()[:8]) }
