// Package xds serves rendered mesh configuration to proxies over the
// aggregated discovery service (ADS), state of the world and delta.
//
// It uses go-control-plane's stream handling (pkg/server/v3) for delta
// streams and a copy of its ordered SotW ADS loop (sotw.go) that keeps
// repeated name lists decoded once, both over its own
// cache: configuration is held once per proxy class, already marshalled by
// render, and every response points at the same shared Anys; only what
// changed for a stream is pushed to it; a NACKed version is never re-sent.
// ACK/NACK state per node and type is kept for the status API.
package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	gcplog "github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	xdsserver "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives stream, NACK and rejection events; nil means
	// slog.Default().
	Logger *slog.Logger
	// ClassOf maps a node id to its proxy class; nil means DefaultClassOf.
	// It runs on every request, so it must be cheap; its error becomes the
	// stream's gRPC status if it is one, InvalidArgument otherwise.
	ClassOf func(nodeID string) (class string, err error)
	// Registerer, when set, receives the server's metrics collector.
	Registerer prometheus.Registerer
	// Keepalive is sent to clients. Its zero fields mean: ping after 30 s
	// idle and drop a peer that does not answer in 10 s, so dead proxies
	// free their streams; close a connection without a stream after
	// DefaultMaxConnectionIdle (2 min), so refused peers and peers that
	// never open a stream do not hold connections.
	Keepalive keepalive.ServerParameters
	// KeepalivePolicy bounds client pings; zero means at most one per 10 s,
	// allowed without active streams (Envoy pings its idle ADS connection).
	KeepalivePolicy keepalive.EnforcementPolicy
	// MaxConcurrentStreams bounds the streams of one connection; zero
	// means DefaultMaxConcurrentStreams.
	MaxConcurrentStreams uint32
	// MaxConnsPerIdentity bounds the open connections of one client
	// identity over mutual TLS; zero means DefaultMaxConnsPerIdentity.
	MaxConnsPerIdentity int
	// ShutdownTimeout bounds graceful shutdown before connections are cut;
	// zero means 10 s.
	ShutdownTimeout time.Duration
	// Authorize, when set, decides on a stream's first request whether the
	// peer (whose credentials are in ctx) may be served nodeID's class; its
	// error ends the stream and is recorded as a rejection. AuthorizeIdentity
	// builds the mutual TLS check. Nil admits every well-formed node.
	Authorize func(ctx context.Context, nodeID, class string) error
	// Credentials secure the port (MutualTLS); nil serves plaintext. Set
	// them here, not as grpc.Creds in GRPCOptions: the server wraps them to
	// record every failed handshake as a rejection.
	Credentials credentials.TransportCredentials
	// Services, when set, registers further gRPC services on the xDS
	// port's server (the certificate signing service).
	Services func(gs *grpc.Server)
	// Certless lists the full method names ("/pkg.Service/Method") a
	// caller may reach without a verified client certificate when
	// Credentials is MutualTLSCertOptional. Every other stream and call
	// without one is refused before its handler runs, so xDS keeps
	// requiring mutual TLS.
	Certless []string
	// GRPCOptions are appended to the server's own options (which set the
	// limits of limits.go and a stream interceptor), so they override them.
	GRPCOptions []grpc.ServerOption
}

// sharedBodyBudget bounds the encoded response bodies sharedCodec keeps
// (plus the resources they reference): enough for a few revisions of a
// 4 MB unscoped class, far below one buffer per stream.
const sharedBodyBudget = 128 << 20

// Server is the xDS server. Create it with New, feed it with Apply, run it
// with Serve; Proxies reports what each connected proxy has.
type Server struct {
	opts    Options
	log     *slog.Logger
	classOf func(string) (string, error)
	metrics *metrics

	applyMu sync.Mutex // serialises Apply

	mu         sync.RWMutex
	classes    map[string]*classState
	classNames []string
	revision   string
	rev        atomic.Pointer[string] // revision, readable under a class lock
	known      string                 // summarizeClasses of the served classes

	streams *streamRegistry
	// rejections lists refused connections and streams (rejections.go).
	rejections rejectionLog
	// conns counts open mutual TLS connections per identity (connlimit.go).
	conns *connCounter
	// bases resolves delta streams' base markers to shared parts.
	bases baseRegistry
	// names maps every served resource name to one shared string, for
	// intern.
	names atomic.Pointer[nameCache]

	serveOnce sync.Once
}

// New returns a Server that serves nothing until the first Apply; streams
// that connect before it get Unavailable and retry.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ClassOf == nil {
		opts.ClassOf = DefaultClassOf
	}
	if opts.Keepalive.Time == 0 {
		opts.Keepalive.Time = 30 * time.Second
	}
	if opts.Keepalive.Timeout == 0 {
		opts.Keepalive.Timeout = 10 * time.Second
	}
	if opts.Keepalive.MaxConnectionIdle == 0 {
		opts.Keepalive.MaxConnectionIdle = DefaultMaxConnectionIdle
	}
	if opts.KeepalivePolicy == (keepalive.EnforcementPolicy{}) {
		opts.KeepalivePolicy = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	}
	if opts.MaxConnsPerIdentity <= 0 {
		opts.MaxConnsPerIdentity = DefaultMaxConnsPerIdentity
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger.With("component", "xds"),
		classOf: opts.ClassOf,
		metrics: newMetrics(),
		classes: map[string]*classState{},
		known:   summarizeClasses(nil),
		conns:   newConnCounter(opts.MaxConnsPerIdentity),
	}
	s.streams = newStreamRegistry(s)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.metrics); err != nil {
			return nil, fmt.Errorf("register xds metrics: %w", err)
		}
	}
	return s, nil
}

// Serve accepts ADS streams on lis until ctx ends, then shuts down: it stops
// accepting, ends open streams (clients reconnect to another replica) and
// waits up to ShutdownTimeout before cutting connections. It returns nil
// after a shutdown caused by ctx, or the listener's error. A Server serves
// once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	first := false
	s.serveOnce.Do(func() { first = true })
	if !first {
		return errors.New("serve xds: server already served")
	}
	// streamsCtx ends every ADS stream handler at shutdown; without it
	// GracefulStop would wait forever on the long-lived streams.
	streamsCtx, endStreams := context.WithCancel(context.Background())
	defer endStreams()

	codec := newSharedCodec(sharedBodyBudget)
	codec.runs = &s.bases
	codec.names = s.internTable
	// The limits on what a peer may send grpc itself (limits.go); what is
	// inside the messages is checked by the stream callbacks.
	gopts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec),
		grpc.KeepaliveParams(s.opts.Keepalive),
		grpc.KeepaliveEnforcementPolicy(s.opts.KeepalivePolicy),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxConcurrentStreams(s.opts.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(MaxHeaderListSize),
		grpc.ConnectionTimeout(HandshakeTimeout),
		grpc.ChainStreamInterceptor(s.observeStream),
		grpc.ChainUnaryInterceptor(s.requireCertUnary),
	}
	if s.opts.Credentials != nil {
		gopts = append(gopts, grpc.Creds(observedCreds{s.opts.Credentials, s}))
	}
	gs := grpc.NewServer(append(gopts, s.opts.GRPCOptions...)...)
	// go-control-plane serves delta ADS; SotW ADS is sotwADS's, ordered
	// by construction, so go-control-plane's SotW options have nothing
	// left to configure (the logger option is shared with delta).
	xs := xdsserver.NewServer(streamsCtx, servingCache{s}, s.streams, sotw.WithLogger(gcpLogger{s.log}))
	ads := adsServer{Server: xs, sotw: &sotwADS{ctx: streamsCtx, cache: servingCache{s}, callbacks: s.streams, s: s}}
	discovery.RegisterAggregatedDiscoveryServiceServer(gs, ads)
	if s.opts.Services != nil {
		s.opts.Services(gs)
	}

	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	s.log.Info("xds server listening", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve xds on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	start := time.Now()
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	endStreams()
	timer := time.NewTimer(s.opts.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
		s.log.Info("xds server stopped", "took", time.Since(start))
	case <-timer.C:
		gs.Stop()
		<-stopped
		s.log.Warn("xds server stopped after shutdown timeout", "timeout", s.opts.ShutdownTimeout)
	}
	<-errc
	return nil
}

// gcpLogger routes go-control-plane's logs to slog. Its Info level is
// per-request chatter ("skipping request as nonce is stale"), so it goes to
// Debug.
type gcpLogger struct{ l *slog.Logger }

var _ gcplog.Logger = gcpLogger{}

func (g gcpLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args) }
func (g gcpLogger) Infof(format string, args ...any)  { g.logf(slog.LevelDebug, format, args) }
func (g gcpLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args) }
func (g gcpLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args) }

// logf formats only when the level is enabled: go-control-plane logs on
// every request.
func (g gcpLogger) logf(level slog.Level, format string, args []any) {
	if g.l.Enabled(context.Background(), level) {
		g.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}
