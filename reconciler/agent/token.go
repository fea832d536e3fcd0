package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/certsvc"
	"github.com/gitmesh/gitmesh/render/bootstrap"
)

// Token mode. In a Kubernetes pod the agent has no certificate to start
// with, only a projected service-account token (audience "gitmesh"). It
// generates a key, sends a CSR with the token to gitmesh's signing service
// on the xDS port (certsvc), and writes the certificate it gets, which
// carries the SPIFFE id of the token's namespace and service account and
// nothing else. It renews at half the certificate's remaining life,
// re-reading the token each time (kubelet rotates it), so a service
// account that is deleted, or a token that is revoked, stops getting
// certificates at the next renewal. The written files serve both as the
// workload's certificate (proxyless gRPC's file_watcher provider) and as
// the client certificate of the mutual TLS xDS connection (grpc-go's
// bootstrap points at them; Envoy's at SDS files holding the same pair).

// Bootstrap file names are the caller's; these are the defaults the
// injected pod uses, in the same directory as the certificates.
const (
	EnvoyBootstrapFile = "envoy.json"
	GRPCBootstrapFile  = "grpc-bootstrap.json"
)

// With BootstrapOut, the agent also keeps two file-based SDS resources in
// OutDir, which the Envoy bootstrap's xDS cluster reads its client
// certificate and CA from (render/bootstrap/sds.go): Envoy reads a
// bootstrap's certificate files only once, but reloads an SDS file when a
// file is renamed into the directory, which every write here does.
const (
	SDSCertFile = "xds-cert.json"
	SDSCAFile   = "xds-ca.json"
)

func runToken(ctx context.Context, o Options, ready *readiness) error {
	if o.NodeID == "" || o.XDSAddress == "" || o.OutDir == "" || o.CAFile == "" {
		return errors.New("agent: node id, xds address, token, CA and an output directory are required")
	}
	a := &agent{o: o, log: o.Logger.With("component", "agent", "node", o.NodeID, "mode", "token"), ready: ready}
	delay := o.RetryBase
	wroteBootstraps := false
	for {
		leaf, err := a.renewByToken(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		if err == nil {
			if !wroteBootstraps {
				if err := a.writeBootstraps(); err != nil {
					return err // a bad flag: retrying will not fix it
				}
				wroteBootstraps = true
				ready.ready.Store(true)
			}
			delay = o.RetryBase
			// Half of what is left: NotBefore is backdated for clock skew,
			// so the remaining life is measured from now.
			wait = time.Until(leaf.NotAfter) / 2
			a.log.Debug("next renewal", "in", wait.Round(time.Millisecond))
		} else {
			wait = time.Duration(float64(delay) * (0.8 + 0.4*mrand.Float64()))
			a.log.Warn("could not get a certificate; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
			delay = min(delay*2, o.RetryMax)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// renewByToken gets one certificate and writes it.
func (a *agent) renewByToken(ctx context.Context) (*x509.Certificate, error) {
	raw, err := os.ReadFile(a.o.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return nil, fmt.Errorf("token: %s is empty", a.o.TokenFile)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	roots, err := a.roots()
	if err != nil {
		return nil, err
	}
	// No client certificate: the token is the proof. Go's TLS client sends
	// none when it has none, and the server admits that for this one method.
	conn, err := grpc.NewClient(a.o.XDSAddress, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, ServerName: a.o.ServerName, RootCAs: roots})))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := certsvc.CreateCertificate(rctx, conn, token, certsvc.Request{
		CSRPEM:          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		ValiditySeconds: int64(a.o.CertTTL / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}
	if len(resp.CertChain) < 2 {
		return nil, fmt.Errorf("create certificate: %d PEM blocks in the answer, want the chain and the trust bundle", len(resp.CertChain))
	}
	chainPEM := []byte(strings.Join(resp.CertChain[:len(resp.CertChain)-1], ""))
	caPEM := []byte(resp.CertChain[len(resp.CertChain)-1])
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("issued certificate: %w", err)
	}
	bundle, err := ca.ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range bundle {
		pool.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range pair.Certificate[1:] {
		if ic, err := x509.ParseCertificate(c); err == nil {
			inter.AddCert(ic)
		}
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("issued certificate does not verify against the trust bundle sent with it: %w", err)
	}
	// The bundle first (so a new root is trusted before a leaf of it is
	// used), then the key, then the chain, as for SDS pushes.
	if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, CAFile), caPEM, 0o644); err != nil {
		return nil, err
	}
	if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, KeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, CertFile), chainPEM, 0o644); err != nil {
		return nil, err
	}
	if err := a.writeSDS(chainPEM, keyPEM, caPEM); err != nil {
		return nil, err
	}
	a.log.Info("certificate written", "identity", firstURI(pair.Leaf), "not_after", pair.Leaf.NotAfter, "serial", pair.Leaf.SerialNumber.Text(16))
	if a.o.Written != nil {
		a.o.Written(pair.Leaf)
	}
	return pair.Leaf, nil
}

// roots trusts the configured CA file and the last bundle received.
func (a *agent) roots() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for _, f := range []string{a.o.CAFile, filepath.Join(a.o.OutDir, CAFile)} {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if certs, err := ca.ParseCerts(raw); err == nil {
			for _, c := range certs {
				pool.AddCert(c)
				n++
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no CA certificate in %s to verify gitmesh with", a.o.CAFile)
	}
	return pool, nil
}

// writeSDS writes the Envoy xDS cluster's SDS files (BootstrapOut only):
// the CA first, as for the PEM files, then the chain and key together in
// one file, each renamed into place (ca.WriteFileAtomic), the move that
// Envoy's watched_directory reacts to.
func (a *agent) writeSDS(chainPEM, keyPEM, caPEM []byte) error {
	if a.o.BootstrapOut == "" {
		return nil
	}
	caRaw, err := bootstrap.SDSValidation(caPEM)
	if err != nil {
		return err
	}
	certRaw, err := bootstrap.SDSCertificate(chainPEM, keyPEM)
	if err != nil {
		return err
	}
	if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, SDSCAFile), caRaw, 0o644); err != nil {
		return err
	}
	// The key is inline: 0600, like key.pem.
	return ca.WriteFileAtomic(filepath.Join(a.o.OutDir, SDSCertFile), certRaw, 0o600)
}

// writeBootstraps writes the Envoy and gRPC bootstraps asked for, the
// Envoy one pointing at the SDS files and the gRPC one at the certificate
// files, once the first certificate is there (neither starts with a
// bootstrap whose files are missing).
func (a *agent) writeBootstraps() error {
	files := &bootstrap.TLSFiles{CertFile: filepath.Join(a.o.OutDir, CertFile), KeyFile: filepath.Join(a.o.OutDir, KeyFile),
		CAFile: filepath.Join(a.o.OutDir, CAFile)}
	if a.o.BootstrapOut != "" {
		sds := &bootstrap.SDSFiles{CertFile: filepath.Join(a.o.OutDir, SDSCertFile), CAFile: filepath.Join(a.o.OutDir, SDSCAFile), Dir: a.o.OutDir}
		raw, err := bootstrap.Envoy(bootstrap.Options{NodeID: a.o.NodeID, XDSAddress: a.o.XDSAddress, Delta: a.o.Delta, SDS: sds})
		if err != nil {
			return fmt.Errorf("agent: envoy bootstrap: %w", err)
		}
		if err := ca.WriteFileAtomic(a.o.BootstrapOut, raw, 0o644); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	if a.o.GRPCBootstrapOut != "" {
		raw, err := bootstrap.GRPC(bootstrap.Options{NodeID: a.o.NodeID, XDSAddress: a.o.XDSAddress, TLS: files, RefreshInterval: a.o.RefreshInterval})
		if err != nil {
			return fmt.Errorf("agent: grpc bootstrap: %w", err)
		}
		if err := ca.WriteFileAtomic(a.o.GRPCBootstrapOut, raw, 0o644); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	return nil
}
