// Package adsload drives many ADS streams against an xDS server the way
// proxies do: each stream ACKs what it receives and subscribes to what its
// resources reference (Envoy: listeners and clusters by wildcard, then the
// route configurations and assignments they name; proxyless gRPC: named
// listeners, then routes, clusters and assignments by name). It tells when
// each stream holds exactly a target configuration, identified by a digest
// (see EntryHash and Expecter), so a load tool can measure convergence and
// push latency end to end without shipping resource lists around.
//
// It is the client half of cmd/meshbench, kept apart so the stream driver
// can be reused by other load tests.
package adsload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// Stream describes one simulated proxy.
type Stream struct {
	// Node is the xDS node id, "CLASS/INSTANCE".
	Node string
	// Mode is how it subscribes.
	Mode Mode
	// Listeners are the listener names a Proxyless stream asks for.
	Listeners []string
}

// Config describes a load run.
type Config struct {
	// Addr is the xDS server's host:port (plain text).
	Addr string
	// Delta selects incremental xDS instead of state of the world.
	Delta bool
	// Conns is the number of gRPC connections the streams share, round
	// robin; 0 or more than the streams means one per stream, as proxies
	// have.
	Conns int
	// Streams are the proxies to simulate.
	Streams []Stream
}

// Event reports a stream reaching its target in a phase, or an error that
// ended a stream (which is then reopened).
type Event struct {
	Stream int
	Phase  int
	At     time.Time
	// Responses, Resources (received or removed) and Bytes (encoded
	// responses) the stream took in during the phase until it was in sync.
	Responses, Resources, Bytes int
	Err                         error
}

// PhaseTotals counts everything all streams received in one phase, in sync
// or not: a push to a stream whose target did not change shows up here.
type PhaseTotals struct {
	Responses, Resources, Bytes int64
}

const maxPhases = 16

// phaseTargets is the digest each stream must reach in phase n.
type phaseTargets struct {
	n       int
	targets []uint64
}

// Driver runs the streams of one Config.
type Driver struct {
	cfg    Config
	conns  []*grpc.ClientConn
	report func(Event)

	targets atomic.Pointer[phaseTargets]
	totals  [maxPhases][3]atomic.Int64

	sotw, delta [4]*entryCache
	proxyless   bool // some stream is proxyless: route references matter

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Dial connects the driver's gRPC connections and waits until every one is
// ready, so that a later Start measures the server, not TCP and HTTP/2
// setup. report receives events from all streams (concurrently, so it must
// be safe for that).
func Dial(ctx context.Context, cfg Config, report func(Event)) (*Driver, error) {
	if len(cfg.Streams) == 0 {
		return nil, errors.New("adsload: no streams")
	}
	n := cfg.Conns
	if n <= 0 || n > len(cfg.Streams) {
		n = len(cfg.Streams)
	}
	d := &Driver{cfg: cfg, report: report}
	d.targets.Store(&phaseTargets{})
	for _, s := range cfg.Streams {
		d.proxyless = d.proxyless || s.Mode == Proxyless
	}
	for t := range d.sotw {
		d.sotw[t], d.delta[t] = newEntryCache(), newEntryCache()
	}
	for range n {
		// Envoy's default HTTP/2 windows are 256 MiB; grpc-go's 64 KiB
		// would measure the client's flow control, not the server.
		conn, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(16<<20), grpc.WithInitialConnWindowSize(64<<20))
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("adsload: dial %s: %w", cfg.Addr, err)
		}
		d.conns = append(d.conns, conn)
		conn.Connect()
	}
	for _, conn := range d.conns {
		for st := conn.GetState(); st != connectivity.Ready; st = conn.GetState() {
			if !conn.WaitForStateChange(ctx, st) {
				d.Close()
				return nil, fmt.Errorf("adsload: connect %s: %w", cfg.Addr, ctx.Err())
			}
		}
	}
	return d, nil
}

// Start opens every stream with targets as phase 1 (targets[i] is stream
// i's digest; see Expecter). Streams run until Close.
func (d *Driver) Start(targets []uint64) {
	d.targets.Store(&phaseTargets{n: 1, targets: targets})
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	for i, spec := range d.cfg.Streams {
		s := &stream{d: d, i: i, spec: spec}
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			s.run(ctx, d.conns[i%len(d.conns)])
		}()
	}
}

// NextPhase installs new targets and returns the new phase number. Call it
// while the streams are quiet (before the Apply it anticipates): each
// stream restarts its counters on its first response in the new phase, and
// reports once it reaches its new target. A stream whose target is
// unchanged and that receives nothing reports nothing.
func (d *Driver) NextPhase(targets []uint64) (int, error) {
	cur := d.targets.Load()
	if cur.n+1 >= maxPhases {
		return 0, fmt.Errorf("adsload: more than %d phases", maxPhases-1)
	}
	d.targets.Store(&phaseTargets{n: cur.n + 1, targets: targets})
	return cur.n + 1, nil
}

// Totals returns what every stream received in phase n.
func (d *Driver) Totals(n int) PhaseTotals {
	if n < 0 || n >= maxPhases {
		return PhaseTotals{}
	}
	t := &d.totals[n]
	return PhaseTotals{Responses: t[0].Load(), Resources: t[1].Load(), Bytes: t[2].Load()}
}

func (d *Driver) phase() *phaseTargets { return d.targets.Load() }

func (d *Driver) count(phase int, r *rawResponse) {
	if phase < 0 || phase >= maxPhases {
		return
	}
	t := &d.totals[phase]
	t[0].Add(1)
	t[1].Add(int64(len(r.resources) + len(r.removed)))
	t[2].Add(int64(r.size))
}

// Close ends the streams and the connections.
func (d *Driver) Close() {
	if d.cancel != nil {
		d.cancel()
	}
	for _, c := range d.conns {
		c.Close()
	}
	d.wg.Wait()
}
