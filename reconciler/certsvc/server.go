// Package certsvc is gitmesh's certificate signing service for workloads
// that have no certificate yet: the caller proves who it is with a
// projected Kubernetes service-account token (audience "gitmesh"), gitmesh
// checks the token with the TokenReview API and signs a SPIFFE certificate
// for exactly that token's namespace and service account, over the public
// key of the caller's CSR. It is Istio's CA service (the same gRPC method
// and messages) and runs on the xDS port, where it is the one service a
// caller may reach without a client certificate (xds.Options.Certless).
package certsvc

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/gitmesh/gitmesh/reconciler/ca"
)

// Audience is the audience a projected token must be issued for; a token
// for the API server (or anything else) is refused, so a token leaked from
// another use cannot mint a mesh identity.
const Audience = "gitmesh"

// MinTTL and the CA's workload TTL bound the lifetime a caller may ask for.
const MinTTL = time.Second

// Options configure a Server.
type Options struct {
	// CA signs the certificates.
	CA *ca.CA
	// Reviewer checks tokens (KubeReviewer in production).
	Reviewer Reviewer
	// TrustDomain is the trust domain of the mesh being served; false
	// means no mesh is loaded yet (requests get Unavailable and retry).
	TrustDomain func() (string, bool)
	// MaxTTL caps the requested lifetime; 0 means the CA's workload TTL,
	// which is also the lifetime of a request that asks for none.
	MaxTTL time.Duration
	// ReviewsPerSecond bounds the TokenReviews the service makes (callers
	// need no certificate, so anyone who reaches the port could otherwise
	// make gitmesh load the API server); 0 means 100 a second with bursts
	// of 200. A request over it gets ResourceExhausted and retries.
	ReviewsPerSecond float64
	// Logger receives every refusal; nil means slog.Default().
	Logger *slog.Logger
	// Registerer, when set, receives gitmesh_ca_requests_total.
	Registerer prometheus.Registerer
}

// Server is the signing service. Register it on the xDS server's grpc
// server.
type Server struct {
	o        Options
	log      *slog.Logger
	requests *prometheus.CounterVec
	reviews  *rate.Limiter
	// logs bounds refusal log lines (10/s, bursts of 20): a caller needs
	// no certificate, so refusals are the cheapest thing to flood. The
	// counter counts them all.
	logs       *rate.Limiter
	suppressed atomic.Int64
}

// Results, the values of gitmesh_ca_requests_total's result label.
const (
	ResultIssued           = "issued"
	ResultUnauthenticated  = "unauthenticated"
	ResultPermissionDenied = "permission-denied"
	ResultInvalid          = "invalid"
	ResultUnavailable      = "unavailable"
	ResultThrottled        = "throttled"
)

// New returns a Server.
func New(o Options) (*Server, error) {
	if o.CA == nil || o.Reviewer == nil || o.TrustDomain == nil {
		return nil, errors.New("certsvc: a CA, a token reviewer and a trust domain are required")
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = o.CA.WorkloadTTL()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReviewsPerSecond <= 0 {
		o.ReviewsPerSecond = 100
	}
	s := &Server{o: o, log: o.Logger.With("component", "certsvc"),
		reviews: rate.NewLimiter(rate.Limit(o.ReviewsPerSecond), int(2*o.ReviewsPerSecond)+1),
		logs:    rate.NewLimiter(10, 20),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_ca_requests_total",
			Help: "Certificate signing requests by result: issued, unauthenticated (no, expired or wrong-audience token), permission-denied (the CSR asks for another identity), invalid, unavailable, throttled (over the TokenReview rate).",
		}, []string{"result"})}
	for _, r := range []string{ResultIssued, ResultUnauthenticated, ResultPermissionDenied, ResultInvalid, ResultUnavailable, ResultThrottled} {
		s.requests.WithLabelValues(r) // every series exists from the start, at 0
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(s.requests); err != nil {
			return nil, fmt.Errorf("certsvc: register metrics: %w", err)
		}
	}
	return s, nil
}

// Requests is the counter of one result (tests).
func (s *Server) Requests(result string) prometheus.Counter {
	return s.requests.WithLabelValues(result)
}

// Register adds the service to gs.
func (s *Server) Register(gs *grpc.Server) {
	gs.RegisterService(&grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "CreateCertificate",
			Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				in := dynamicpb.NewMessage(requestDesc)
				if err := dec(in); err != nil {
					return nil, err
				}
				call := func(ctx context.Context, req any) (any, error) {
					resp, err := s.CreateCertificate(ctx, requestOf(req.(*dynamicpb.Message)))
					if err != nil {
						return nil, err
					}
					return resp.message(), nil
				}
				if icpt == nil {
					return call(ctx, in)
				}
				return icpt(ctx, in, &grpc.UnaryServerInfo{Server: s, FullMethod: CreateCertificateMethod}, call)
			},
		}},
		Metadata: "istioca.proto",
	}, s)
}

// CreateCertificate checks the caller's token and signs req's public key
// for the token's identity. Every refusal is logged and counted and
// carries no certificate.
func (s *Server) CreateCertificate(ctx context.Context, req Request) (Response, error) {
	resp, id, err := s.create(ctx, req)
	addr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr = p.Addr.String()
	}
	if err != nil {
		st := status.Convert(err)
		s.requests.WithLabelValues(resultOf(st.Code())).Inc()
		if !s.logs.Allow() {
			s.suppressed.Add(1)
			return Response{}, err
		}
		attrs := []any{"peer", addr, "identity", id, "code", st.Code().String(), "err", st.Message()}
		if n := s.suppressed.Swap(0); n > 0 {
			attrs = append(attrs, "other_refusals_not_logged", n)
		}
		s.log.Warn("certificate request refused", attrs...)
		return Response{}, err
	}
	s.requests.WithLabelValues(ResultIssued).Inc()
	s.log.Info("certificate issued", "peer", addr, "identity", id)
	return resp, nil
}

func resultOf(c codes.Code) string {
	switch c {
	case codes.Unauthenticated:
		return ResultUnauthenticated
	case codes.PermissionDenied:
		return ResultPermissionDenied
	case codes.InvalidArgument:
		return ResultInvalid
	case codes.ResourceExhausted:
		return ResultThrottled
	}
	return ResultUnavailable
}

func (s *Server) create(ctx context.Context, req Request) (Response, string, error) {
	token, err := bearer(ctx)
	if err != nil {
		return Response{}, "", err
	}
	if !s.reviews.Allow() {
		return Response{}, "", status.Error(codes.ResourceExhausted, "too many certificate requests at once; retry with backoff")
	}
	sa, err := s.o.Reviewer.Review(ctx, token)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			return Response{}, "", status.Errorf(codes.Unauthenticated, "service-account token refused: %v", err)
		}
		return Response{}, "", status.Errorf(codes.Unavailable, "could not review the service-account token: %v", err)
	}
	td, ok := s.o.TrustDomain()
	if !ok {
		return Response{}, "", status.Error(codes.Unavailable, "no mesh is loaded yet, so its trust domain is unknown; retry")
	}
	id := "spiffe://" + td + "/ns/" + sa.Namespace + "/sa/" + sa.Name
	csr, err := parseCSR(req.CSRPEM)
	if err != nil {
		return Response{}, id, status.Errorf(codes.InvalidArgument, "csr: %v", err)
	}
	// The identity comes from the token alone. A CSR that names another
	// one is refused rather than silently corrected, so a confused or
	// malicious caller learns it cannot have it.
	for _, u := range csr.URIs {
		if u.String() != id {
			return Response{}, id, status.Errorf(codes.PermissionDenied,
				"the CSR asks for %q but the token is service account %q of namespace %q, whose identity is %q", u.String(), sa.Name, sa.Namespace, id)
		}
	}
	ttl := time.Duration(req.ValiditySeconds) * time.Second
	switch {
	case req.ValiditySeconds < 0:
		return Response{}, id, status.Errorf(codes.InvalidArgument, "validity_duration: must not be negative (got %d)", req.ValiditySeconds)
	case ttl == 0 || ttl > s.o.MaxTTL:
		ttl = s.o.MaxTTL
	case ttl < MinTTL:
		ttl = MinTTL
	}
	is, err := s.o.CA.SignPublicKey(id, csr.PublicKey, ttl)
	if err != nil {
		return Response{}, id, status.Errorf(codes.InvalidArgument, "sign: %v", err)
	}
	chain, err := ca.ParseCerts(is.CertPEM)
	if err != nil {
		return Response{}, id, status.Errorf(codes.Internal, "sign: %v", err)
	}
	out := Response{}
	for _, c := range chain {
		out.CertChain = append(out.CertChain, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	out.CertChain = append(out.CertChain, string(s.o.CA.TrustBundle()))
	return out, id, nil
}

// bearer is the token of the "authorization: Bearer TOKEN" metadata.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Errorf(codes.Unauthenticated, "no service-account token: send a projected token with audience %q as \"authorization: Bearer TOKEN\" metadata", Audience)
	}
	if len(vals) > 1 {
		return "", status.Error(codes.Unauthenticated, "more than one authorization metadata value")
	}
	tok, ok := strings.CutPrefix(vals[0], "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return "", status.Error(codes.Unauthenticated, "authorization metadata is not \"Bearer TOKEN\"")
	}
	return strings.TrimSpace(tok), nil
}

// maxCSRBytes bounds the PEM a caller may make us parse.
const maxCSRBytes = 16 << 10

func parseCSR(raw string) (*x509.CertificateRequest, error) {
	if len(raw) > maxCSRBytes {
		return nil, fmt.Errorf("%d bytes, more than %d", len(raw), maxCSRBytes)
	}
	b, _ := pem.Decode([]byte(raw))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	return csr, nil
}
