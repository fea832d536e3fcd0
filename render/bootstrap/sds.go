package bootstrap

import (
	"errors"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/render"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// File-based SDS for the xDS connection's own certificate. Envoy reads a
// bootstrap's file DataSources once, so a sidecar whose first workload
// certificate expired could not reconnect to gitmesh until restarted.
// With SDS from a path_config_source Envoy re-reads the file whenever an
// entry is moved into the watched_directory, which is Envoy's documented
// way of rotating file certificates (api/envoy/config/core/v3/
// config_source.proto, PathConfigSource: "If configured, this directory
// will be watched for moves. When an entry in this directory is moved to,
// the path will be reloaded"; docs: configuration/security/secret
// "Example three: certificate rotation for xDS gRPC connection"). The
// writer (gitmesh agent) therefore writes each file to a temporary name
// in the directory and renames it into place.
//
// Each file is a DiscoveryResponse holding one Secret. The key is inline
// in the certificate's file, next to its chain, so one rename swaps both:
// Envoy never sees a new certificate with the old key.

// Secret names the xDS cluster asks the SDS files for. Envoy rejects a
// file whose Secret has another name.
const (
	SDSCertSecret = "gitmesh-xds-client"
	SDSCASecret   = "gitmesh-xds-ca"
)

// SDSFiles locate the file-based SDS resources of the xDS cluster.
type SDSFiles struct {
	// CertFile holds the Secret SDSCertSecret (SDSCertificate writes it),
	// CAFile the Secret SDSCASecret (SDSValidation). Both must exist when
	// Envoy starts.
	CertFile, CAFile string
	// Dir is watched for moves: both files are reloaded when any entry is
	// renamed into it. It should be the directory the files are in.
	Dir string
}

// SDSCertificate returns the JSON DiscoveryResponse for SDSFiles.CertFile:
// the Secret SDSCertSecret with the chain and key inline.
func SDSCertificate(chainPEM, keyPEM []byte) ([]byte, error) {
	if len(chainPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("sds certificate: empty chain or key")
	}
	return sdsResponse(render.Secret(SDSCertSecret, render.SecretPEM{CertChain: chainPEM, Key: keyPEM}))
}

// SDSValidation returns the JSON DiscoveryResponse for SDSFiles.CAFile:
// the Secret SDSCASecret trusting caPEM.
func SDSValidation(caPEM []byte) ([]byte, error) {
	if len(caPEM) == 0 {
		return nil, errors.New("sds validation context: empty CA bundle")
	}
	return sdsResponse(render.Secret(SDSCASecret, render.SecretPEM{TrustedCA: caPEM}))
}

// sdsResponse wraps a Secret built by render.Secret, the one builder of
// Secret protos, in the DiscoveryResponse a file SDS source holds.
func sdsResponse(r *snapshot.Resource, err error) ([]byte, error) {
	if err != nil {
		return nil, fmt.Errorf("sds: %w", err)
	}
	var s tlsv3.Secret
	if err := r.Any.UnmarshalTo(&s); err != nil {
		return nil, fmt.Errorf("sds secret %q: %w", r.Name, err)
	}
	if err := s.ValidateAll(); err != nil {
		return nil, fmt.Errorf("sds secret %q: %w", r.Name, err)
	}
	return marshal(&discoveryv3.DiscoveryResponse{Resources: []*anypb.Any{r.Any}})
}

// sdsTLS is the xDS cluster's UpstreamTlsContext with both secrets from
// the SDS files.
func sdsTLS(f *SDSFiles, sni string) (*corev3.TransportSocket, error) {
	if f.CertFile == "" || f.CAFile == "" || f.Dir == "" {
		return nil, errors.New("sds files: certificate file, CA file and watched directory are required")
	}
	source := func(path string) *corev3.ConfigSource {
		return &corev3.ConfigSource{
			ResourceApiVersion: corev3.ApiVersion_V3,
			ConfigSourceSpecifier: &corev3.ConfigSource_PathConfigSource{PathConfigSource: &corev3.PathConfigSource{
				Path:             path,
				WatchedDirectory: &corev3.WatchedDirectory{Path: f.Dir},
			}},
		}
	}
	return tlsSocket(&tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: SDSCertSecret, SdsConfig: source(f.CertFile)}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: SDSCASecret, SdsConfig: source(f.CAFile)},
			},
		},
	})
}

func tlsSocket(ctx proto.Message) (*corev3.TransportSocket, error) {
	a, err := anypb.New(ctx)
	if err != nil {
		return nil, err
	}
	return &corev3.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a},
	}, nil
}
