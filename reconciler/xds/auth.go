package xds

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Admission by identity. Over mutual TLS every proxy's client certificate
// carries its SPIFFE id; a stream may only ask for a node whose class has
// that identity. Without this check anyone who can reach the port could
// claim any node id and receive that workload's private key by SDS.

// ErrNoPeerCertificate means the stream did not come over mutual TLS.
var ErrNoPeerCertificate = errors.New("no verified client certificate (the stream is not mutual TLS)")

// PeerIdentity returns the SPIFFE id (the one spiffe:// URI SAN) of the
// verified client certificate of a stream's context.
func PeerIdentity(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", ErrNoPeerCertificate
	}
	return identityOf(p.AuthInfo)
}

// identityOf is PeerIdentity of a handshake's AuthInfo.
func identityOf(ai credentials.AuthInfo) (string, error) {
	info, ok := ai.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.PeerCertificates) == 0 {
		return "", ErrNoPeerCertificate
	}
	var ids []string
	for _, u := range info.State.PeerCertificates[0].URIs {
		if u.Scheme == "spiffe" {
			ids = append(ids, u.String())
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("the client certificate has %d SPIFFE ids, want exactly 1", len(ids))
	}
	return ids[0], nil
}

// AuthorizeIdentity returns an Options.Authorize hook that admits a stream
// only when its client certificate's SPIFFE id is the identity identityOf
// reports for the class its node id claims. Everything else is refused
// with PermissionDenied, which ends the stream before any response (and so
// before any secret) is sent.
func AuthorizeIdentity(identityOf func(class string) (string, bool)) func(ctx context.Context, nodeID, class string) error {
	return func(ctx context.Context, nodeID, class string) error {
		got, err := PeerIdentity(ctx)
		if err != nil {
			return status.Errorf(codes.PermissionDenied, "node %q: %v", nodeID, err)
		}
		want, ok := identityOf(class)
		if !ok {
			return status.Errorf(codes.PermissionDenied, "node %q claims class %q, which has no identity at this revision; the client certificate is %q", nodeID, class, got)
		}
		if got != want {
			return status.Errorf(codes.PermissionDenied, "node %q claims class %q whose identity is %q, but the client certificate is %q", nodeID, class, want, got)
		}
		return nil
	}
}

// authorize runs the Authorize hook; an error that is not a gRPC status
// becomes PermissionDenied.
func (s *Server) authorize(ctx context.Context, nodeID, class string) error {
	if s.opts.Authorize == nil {
		return nil
	}
	err := s.opts.Authorize(ctx, nodeID, class)
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Errorf(codes.PermissionDenied, "node %q: %v", nodeID, err)
}
