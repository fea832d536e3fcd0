// Package agent is gitmesh's node agent for proxyless gRPC workloads, in
// the role of Istio's pilot-agent. grpc-go's xDS security reads certificates
// only through certificate provider plugins (file_watcher), never by SDS,
// so the agent subscribes to the node's SDS secrets (`default` and
// `ROOTCA`) over mutual TLS and writes them where the application's
// bootstrap points its `default` provider: DIR/cert.pem, DIR/key.pem and
// DIR/ca.pem. Every push (a rotation) rewrites them atomically; the
// file_watcher picks them up on its next refresh.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/render"
)

// File names the agent writes in Options.OutDir.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
	CAFile   = "ca.pem"
)

// Options configure an agent.
type Options struct {
	// NodeID is the proxy's node id, CLASS/INSTANCE.
	NodeID string
	// XDSAddress is host:port of gitmesh's xDS server.
	XDSAddress string
	// ServerName is the name the xDS server's certificate must carry;
	// "" means the host of XDSAddress.
	ServerName string
	// CertFile, KeyFile and CAFile are the bootstrap credentials (from
	// `gitmesh certs issue`), used until the first certificate is written.
	CertFile, KeyFile, CAFile string
	// OutDir receives cert.pem, key.pem (0600) and ca.pem.
	OutDir string
	// RetryBase and RetryMax bound the reconnect backoff (defaults 500ms, 30s).
	RetryBase, RetryMax time.Duration
	Logger              *slog.Logger
	// TokenFile selects token mode (token.go): the projected
	// service-account token that buys a certificate from gitmesh's signing
	// service, instead of the bootstrap CertFile and KeyFile.
	TokenFile string
	// CertTTL is the lifetime token mode asks for; 0 means the server's.
	CertTTL time.Duration
	// BootstrapOut and GRPCBootstrapOut, when set, receive an Envoy and a
	// gRPC xDS bootstrap pointing at the files in OutDir (token mode), with
	// Delta and RefreshInterval as in render/bootstrap.Options.
	BootstrapOut, GRPCBootstrapOut string
	Delta                          bool
	RefreshInterval                string
	// ReadyAddress, when set, is where the agent serves ReadyPath (the
	// injected pod uses :15020, proxyports.AgentStatus, on every interface
	// because the kubelet probes the pod's IP). ReadyListener, when set, is
	// used instead (tests).
	ReadyAddress  string
	ReadyListener net.Listener
	// Written, when set, is called after each successful write with the
	// new leaf (tests and metrics; it must not block).
	Written func(leaf *x509.Certificate)
}

// Run keeps the node's certificate files current until ctx ends. It
// reconnects with backoff after any stream failure, presenting the newest
// certificate it has (the one it last wrote, while it is valid, else the
// bootstrap one), so a long-running workload never depends on its
// bootstrap certificate staying valid.
//
// With TokenFile set it runs in token mode instead (token.go).
func Run(ctx context.Context, o Options) error {
	if o.TokenFile == "" && (o.NodeID == "" || o.XDSAddress == "" || o.OutDir == "" || o.CertFile == "" || o.KeyFile == "" || o.CAFile == "") {
		return errors.New("agent: node id, xds address, bootstrap cert, key and CA, and an output directory are required")
	}
	if _, _, err := nodeid.Parse(o.NodeID); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if o.ServerName == "" {
		host, _, err := net.SplitHostPort(o.XDSAddress)
		if err != nil {
			return fmt.Errorf("agent: xds address %q: %w", o.XDSAddress, err)
		}
		o.ServerName = host
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 500 * time.Millisecond
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if err := os.MkdirAll(o.OutDir, 0o700); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	ready := &readiness{}
	if err := serveReady(ctx, o, ready); err != nil {
		return err
	}
	if o.TokenFile != "" {
		return runToken(ctx, o, ready)
	}
	a := &agent{o: o, log: o.Logger.With("component", "agent", "node", o.NodeID), ready: ready}
	delay := o.RetryBase
	for {
		got, err := a.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if got {
			delay = o.RetryBase // the stream worked: start backing off afresh
		}
		wait := time.Duration(float64(delay) * (0.8 + 0.4*rand.Float64()))
		a.log.Warn("xds stream ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		delay = min(delay*2, o.RetryMax)
	}
}

type agent struct {
	o     Options
	log   *slog.Logger
	ready *readiness
}

// session runs one ADS stream until it fails; got reports whether it
// received anything.
func (a *agent) session(ctx context.Context) (got bool, err error) {
	cfg, err := a.tlsConfig()
	if err != nil {
		return false, err
	}
	conn, err := grpc.NewClient(a.o.XDSAddress, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return false, err
	}
	node := &corev3.Node{Id: a.o.NodeID}
	names := []string{render.SecretDefault, render.SecretRootCA}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: snapshot.SecretType, ResourceNames: names}); err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		got = true
		ack := &discovery.DiscoveryRequest{TypeUrl: snapshot.SecretType, ResourceNames: names,
			VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
		if err := a.write(resp); err != nil {
			a.log.Error("could not write the pushed certificates; rejecting them", "err", err)
			ack.ErrorDetail = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
			// A NACK keeps the previous version: say which one we have.
			ack.VersionInfo = ""
		}
		if err := stream.Send(ack); err != nil {
			return got, err
		}
	}
}

// tlsConfig presents the newest valid certificate on every handshake and
// trusts the bootstrap CA plus the last trust bundle received (which holds
// the new root first during a root rotation).
func (a *agent) tlsConfig() (*tls.Config, error) {
	roots, err := a.roots()
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: a.o.ServerName,
		RootCAs:    roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return a.newestCert()
		},
	}, nil
}

// newestCert is the written pair while it is valid, else the bootstrap
// pair.
func (a *agent) newestCert() (*tls.Certificate, error) {
	written, err := tls.LoadX509KeyPair(filepath.Join(a.o.OutDir, CertFile), filepath.Join(a.o.OutDir, KeyFile))
	if err == nil && written.Leaf != nil && time.Now().Before(written.Leaf.NotAfter) {
		return &written, nil
	}
	boot, err := tls.LoadX509KeyPair(a.o.CertFile, a.o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: bootstrap certificate: %w", err)
	}
	return &boot, nil
}

// write stores the pushed secrets: the bundle first (so a new root is
// trusted before a leaf of it is used), then the key, then the chain.
func (a *agent) write(resp *discovery.DiscoveryResponse) error {
	var certPEM, keyPEM, caPEM []byte
	for _, r := range resp.GetResources() {
		var s tlsv3.Secret
		if err := r.UnmarshalTo(&s); err != nil {
			return fmt.Errorf("decode secret: %w", err)
		}
		switch s.GetName() {
		case render.SecretDefault:
			certPEM = s.GetTlsCertificate().GetCertificateChain().GetInlineBytes()
			keyPEM = s.GetTlsCertificate().GetPrivateKey().GetInlineBytes()
		case render.SecretRootCA:
			caPEM = s.GetValidationContext().GetTrustedCa().GetInlineBytes()
		}
	}
	var leaf *x509.Certificate
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fmt.Errorf("secret %q: %w", render.SecretDefault, err)
		}
		leaf = pair.Leaf
	}
	if caPEM != nil {
		if _, err := ca.ParseCerts(caPEM); err != nil {
			return fmt.Errorf("secret %q: %w", render.SecretRootCA, err)
		}
		if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, CAFile), caPEM, 0o644); err != nil {
			return err
		}
	}
	if leaf != nil {
		if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, KeyFile), keyPEM, 0o600); err != nil {
			return err
		}
		if err := ca.WriteFileAtomic(filepath.Join(a.o.OutDir, CertFile), certPEM, 0o644); err != nil {
			return err
		}
		a.log.Info("certificate written", "identity", firstURI(leaf), "not_after", leaf.NotAfter, "serial", leaf.SerialNumber.Text(16))
		a.ready.ready.Store(true)
		if a.o.Written != nil {
			a.o.Written(leaf)
		}
	}
	return nil
}

func firstURI(c *x509.Certificate) string {
	if len(c.URIs) == 0 {
		return ""
	}
	return c.URIs[0].String()
}
