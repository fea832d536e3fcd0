package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// Refusals. Every connection or stream the server refuses — at the TLS
// handshake, on a request over the limits, or at admission — is recorded
// once here: counted in gitmesh_xds_rejected_connections_total{reason},
// logged (rate-limited), and listed in Rejections. Repeats of one peer
// (host, without the ephemeral port) and reason collapse into one entry
// with a count, so a proxy retrying every second, or an attacker opening
// connections in a loop, holds one bounded entry, not one per attempt.
const (
	// maxRejections bounds the entries kept; the least recently seen is
	// dropped first and counted in RejectionsDropped.
	maxRejections = 64
	// maxRejectionText bounds an entry's error text.
	maxRejectionText = 1024
	// rejectionLogEvery is how often a repeating refusal is logged again
	// (with the count since); its first occurrence is logged at once.
	rejectionLogEvery = time.Minute
	// rejectionLogBurst bounds how many refusals are logged per
	// rejectionLogEvery across all peers; the rest are counted and the
	// count is logged with the next line.
	rejectionLogBurst = 20
)

// rejectionEntry is one collapsed refusal and its logging state.
type rejectionEntry struct {
	key string
	apiv1.Rejection
	loggedAt time.Time
	unlogged int // occurrences since loggedAt
}

// rejectionLog holds the collapsed, bounded list of refusals.
type rejectionLog struct {
	mu      sync.Mutex
	entries []*rejectionEntry // unordered, at most maxRejections
	dropped int64

	windowStart time.Time
	windowLines int
	suppressed  int
}

// rejectionKey says which refusals are one entry: the same peer host,
// identity, reason and code; the node id too, except for over-limit
// requests, whose id is attacker-chosen and would let one peer fill the
// list with distinct entries.
func rejectionKey(r apiv1.Rejection) string {
	node := r.NodeID
	if r.Reason == apiv1.ReasonLimit || r.Reason == apiv1.ReasonMessageTooLarge {
		node = ""
	}
	return strings.Join([]string{hostOf(r.Peer), r.Identity, r.Reason, r.Code, node}, "\x00")
}

// hostOf is an address without its port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// add records one refusal and reports whether it should be logged now,
// with how many occurrences went unlogged before it.
func (l *rejectionLog) add(r apiv1.Rejection) (entry apiv1.Rejection, log bool, repeats int, suppressed int) {
	r.NodeID = clip(r.NodeID, MaxNodeIDBytes)
	r.Identity = clip(r.Identity, MaxNodeIDBytes)
	r.Peer = clip(r.Peer, 256)
	r.Error = clip(r.Error, maxRejectionText)
	key := rejectionKey(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	var e *rejectionEntry
	for _, x := range l.entries {
		if x.key == key {
			e = x
			break
		}
	}
	if e == nil {
		if len(l.entries) == maxRejections {
			oldest := 0
			for i, x := range l.entries {
				if x.At.Before(l.entries[oldest].At) {
					oldest = i
				}
			}
			l.dropped += int64(l.entries[oldest].Count)
			l.entries = slices.Delete(l.entries, oldest, oldest+1)
		}
		r.Count, r.FirstAt = 1, r.At
		e = &rejectionEntry{key: key, Rejection: r}
		l.entries = append(l.entries, e)
	} else {
		e.Count++
		e.At, e.Error, e.Peer = r.At, r.Error, r.Peer
		if r.NodeID != "" {
			e.NodeID = r.NodeID
		}
	}
	e.unlogged++
	if !e.loggedAt.IsZero() && r.At.Sub(e.loggedAt) < rejectionLogEvery {
		return e.Rejection, false, 0, 0
	}
	if r.At.Sub(l.windowStart) >= rejectionLogEvery {
		l.windowStart, l.windowLines = r.At, 0
	}
	if l.windowLines >= rejectionLogBurst {
		l.suppressed++
		return e.Rejection, false, 0, 0
	}
	l.windowLines++
	repeats, suppressed = e.unlogged-1, l.suppressed
	e.loggedAt, e.unlogged, l.suppressed = r.At, 0, 0
	return e.Rejection, true, repeats, suppressed
}

// list returns the entries, most recently seen first, and how many
// refusals were dropped from the list.
func (l *rejectionLog) list() ([]apiv1.Rejection, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]apiv1.Rejection, len(l.entries))
	for i, e := range l.entries {
		out[i] = e.Rejection
	}
	slices.SortStableFunc(out, func(a, b apiv1.Rejection) int { return b.At.Compare(a.At) })
	return out, l.dropped
}

// refused records a refusal: metric, list, log.
func (s *Server) refused(r apiv1.Rejection) {
	s.metrics.rejectedConns.WithLabelValues(r.Reason).Inc()
	if !strings.HasPrefix(r.Reason, "tls-") {
		s.metrics.rejected.WithLabelValues(r.Code).Inc()
	}
	e, log, repeats, suppressed := s.rejections.add(r)
	if !log {
		return
	}
	attrs := []any{"peer", e.Peer, "reason", e.Reason, "code", e.Code}
	if e.NodeID != "" {
		attrs = append(attrs, "node", e.NodeID)
	}
	if e.Identity != "" {
		attrs = append(attrs, "identity", e.Identity)
	}
	attrs = append(attrs, "error", e.Error)
	if repeats > 0 {
		attrs = append(attrs, "repeated", repeats)
	}
	if suppressed > 0 {
		attrs = append(attrs, "other_refusals_not_logged", suppressed)
	}
	msg, level := "xds stream refused", slog.LevelWarn
	if strings.HasPrefix(e.Reason, "tls-") {
		msg = "xds connection refused"
	}
	if e.Reason == apiv1.ReasonTLSClosed {
		level = slog.LevelInfo // TCP health checks do this every few seconds
	}
	s.log.Log(context.Background(), level, msg, attrs...)
}

// Rejections returns the refused connections and streams, collapsed by
// peer and reason, most recently seen first; at most 64.
func (s *Server) Rejections() []apiv1.Rejection {
	out, _ := s.rejections.list()
	return out
}

// RejectionsDropped counts refusals no longer listed by Rejections
// because newer ones took their place.
func (s *Server) RejectionsDropped() int64 {
	_, n := s.rejections.list()
	return n
}

// Observing TLS handshakes. grpc performs the handshake inside
// credentials.TransportCredentials.ServerHandshake and only logs a failure
// to its own (silent by default) logger, so the server wraps the
// credentials: observedCreds calls the real ServerHandshake and reports
// its error, with the raw connection's remote address, before returning
// it to grpc unchanged.
type observedCreds struct {
	credentials.TransportCredentials
	s *Server
}

func (c observedCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		reason := handshakeReason(err)
		c.s.refused(apiv1.Rejection{Peer: conn.RemoteAddr().String(), Code: codes.Unauthenticated.String(),
			Reason: reason, Error: "TLS handshake: " + err.Error(), At: time.Now()})
		return out, info, err
	}
	id, ierr := identityOf(info)
	if errors.Is(ierr, ErrNoPeerCertificate) {
		// MutualTLSCertOptional: connections without a certificate share
		// one count, so they cannot hold the server's descriptors either.
		id, ierr = noCertificateIdentity, nil
	}
	if ierr == nil {
		if out, err = c.s.admitConn(out, conn, id); err != nil {
			return nil, nil, err
		}
	}
	return out, info, nil
}

// noCertificateIdentity is the connection limit's key for connections
// without a client certificate.
const noCertificateIdentity = "(no client certificate)"

func (c observedCreds) Clone() credentials.TransportCredentials {
	return observedCreds{c.TransportCredentials.Clone(), c.s}
}

// handshakeReason classifies a TLS handshake error.
func handshakeReason(err error) string {
	var rh tls.RecordHeaderError
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	var op *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &rh):
		return apiv1.ReasonTLSPlaintext
	case strings.Contains(msg, "didn't provide a certificate"):
		return apiv1.ReasonTLSNoCertificate
	case errors.As(err, &unknown):
		return apiv1.ReasonTLSUnknownAuthority
	case errors.As(err, &verify):
		return apiv1.ReasonTLSBadCertificate
	case errors.Is(err, os.ErrDeadlineExceeded):
		return apiv1.ReasonTLSTimeout
	case errors.As(err, &op) && op.Op == "remote error":
		return apiv1.ReasonTLSPeerAlert
	case errors.Is(err, io.EOF):
		return apiv1.ReasonTLSClosed
	}
	return apiv1.ReasonTLSHandshake
}

// Observing streams. go-control-plane ends a stream with the error a
// callback or the cache returned, and ends it quietly (status OK) when a
// receive fails, which is how grpc reports a message over MaxRecvMsgSize.
// The stream interceptor sees both: it records every refusal in one place,
// and turns the quiet end into the ResourceExhausted grpc reported.
type observedStream struct {
	grpc.ServerStream
	ctx     context.Context
	recvErr error
}

// streamHolderKey carries the stream's *streamState to the interceptor.
type streamHolderKey struct{}

type streamHolder struct {
	mu sync.Mutex
	st *streamState
}

func (o *observedStream) Context() context.Context { return o.ctx }

func (o *observedStream) RecvMsg(m any) error {
	err := o.ServerStream.RecvMsg(m)
	if err != nil && status.Code(err) == codes.ResourceExhausted && o.recvErr == nil {
		o.recvErr = err
	}
	return err
}

func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	holder := &streamHolder{}
	o := &observedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), streamHolderKey{}, holder)}
	var err error
	if ref := s.requireCert(ss.Context(), info.FullMethod); ref != nil {
		err = ref // the handler never runs: no request is read, nothing is sent
	} else {
		err = handler(srv, o)
	}
	var ref *refusal
	switch {
	case errors.As(err, &ref):
	case err == nil && o.recvErr != nil:
		st := status.Convert(o.recvErr)
		ref = &refusal{st: status.New(codes.ResourceExhausted, clip(st.Message(), maxRejectionText)), reason: apiv1.ReasonMessageTooLarge}
		err = ref
	default:
		return err
	}
	r := apiv1.Rejection{NodeID: ref.nodeID, Code: ref.st.Code().String(), Reason: ref.reason, Error: ref.st.Message(), At: time.Now()}
	if p, ok := peer.FromContext(ss.Context()); ok && p.Addr != nil {
		r.Peer = p.Addr.String()
	}
	r.Identity, _ = PeerIdentity(ss.Context())
	holder.mu.Lock()
	if st := holder.st; st != nil && r.NodeID == "" {
		st.mu.Lock()
		r.NodeID = st.nodeID
		st.mu.Unlock()
	}
	holder.mu.Unlock()
	s.refused(r)
	return err
}

// requireCert refuses a call without a verified client certificate on a
// port with credentials, unless its method is Certless. Under MutualTLS
// such a connection never gets this far; under MutualTLSCertOptional this
// is where it stops, with the handshake's code and reason.
func (s *Server) requireCert(ctx context.Context, method string) *refusal {
	if s.opts.Credentials == nil || slices.Contains(s.opts.Certless, method) {
		return nil
	}
	if _, err := PeerIdentity(ctx); err == nil || !errors.Is(err, ErrNoPeerCertificate) {
		return nil // a certificate was verified (a bad SPIFFE id is Authorize's to refuse)
	}
	return &refusal{st: status.Newf(codes.Unauthenticated, "%s needs a verified client certificate (mutual TLS); only %s may be called without one",
		method, strings.Join(s.opts.Certless, ", ")), reason: apiv1.ReasonTLSNoCertificate}
}

// requireCertUnary is requireCert for unary calls, recorded like a
// refused stream.
func (s *Server) requireCertUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ref := s.requireCert(ctx, info.FullMethod)
	if ref == nil {
		return handler(ctx, req)
	}
	r := apiv1.Rejection{Code: ref.st.Code().String(), Reason: ref.reason, Error: ref.st.Message(), At: time.Now()}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.Peer = p.Addr.String()
	}
	s.refused(r)
	return nil, ref
}
