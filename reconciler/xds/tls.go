package xds

import (
	"crypto/tls"
	"crypto/x509"

	"google.golang.org/grpc/credentials"
)

// MutualTLS returns the credentials (for Options.Credentials) of the xDS
// port's mutual TLS:
// every client must present a certificate that verifies against roots, and
// the server presents cert. Both are asked for on each handshake (through
// GetConfigForClient), so a renewed serving certificate or a rotated trust
// bundle takes effect without a restart and without dropping streams that
// are already open.
func MutualTLS(cert func() (*tls.Certificate, error), roots func() *x509.CertPool) credentials.TransportCredentials {
	return mutualTLS(cert, roots, tls.RequireAndVerifyClientCert)
}

// MutualTLSCertOptional is MutualTLS for a port that also serves methods a
// caller without a certificate may call (Options.Certless: the certificate
// signing service, whose callers have none yet). A certificate that is
// presented must still verify against roots, or the handshake fails; a
// connection without one is admitted by TLS, and the server then refuses
// every stream and call on it except the Certless methods, with the same
// code (Unauthenticated) and rejection reason (tls-no-certificate) the
// handshake gives under MutualTLS.
func MutualTLSCertOptional(cert func() (*tls.Certificate, error), roots func() *x509.CertPool) credentials.TransportCredentials {
	return mutualTLS(cert, roots, tls.VerifyClientCertIfGiven)
}

func mutualTLS(cert func() (*tls.Certificate, error), roots func() *x509.CertPool, auth tls.ClientAuthType) credentials.TransportCredentials {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := cert()
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*c},
				ClientAuth:   auth,
				ClientCAs:    roots(),
			}, nil
		},
	}
	return credentials.NewTLS(cfg)
}
