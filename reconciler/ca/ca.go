// Package ca is gitmesh's certificate authority: it issues the X.509 SVIDs
// (SPIFFE certificates) that workloads use for mutual TLS and that proxies
// present on the xDS port, the way istiod's built-in CA (Citadel) does.
//
// It runs in one of two modes. Self-signed: a root is generated on first
// start and kept in the state dir, so a restart issues under the same root
// and every certificate already out keeps verifying. Plug-in: an
// intermediate CA and its key are loaded from files (Istio's cacerts), so an
// organisation's offline root signs the mesh; the root(s) from the chain file
// are then the trust bundle and gitmesh never holds a root key.
//
// Private keys leave this package only as the KeyPEM of an Issued value:
// nothing here logs, and no error message contains key material.
package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gitmesh/gitmesh/internal/private"
)

// Default lifetimes. Workload certificates are short-lived so that a leaked
// key is useful for a day at most; the root outlives every leaf by far.
const (
	DefaultWorkloadTTL = 24 * time.Hour
	DefaultRootTTL     = 10 * 365 * 24 * time.Hour
	// DefaultRootOverlap is how long a rotated-out root stays trusted: long
	// enough for every leaf it signed to be re-issued and to expire.
	DefaultRootOverlap = 2 * DefaultWorkloadTTL
)

// File names inside Options.Dir (self-signed mode).
const (
	rootKeyFile     = "root-key.pem"
	rootCertFile    = "root-cert.pem"
	retiredRootFile = "retired-roots.pem"
)

// Options configure a CA.
type Options struct {
	// TrustDomain, when set, is the only trust domain Issue signs for, so a
	// bad identity string cannot mint a certificate for another domain.
	TrustDomain string
	// Dir holds the self-signed root (STATE-DIR/ca). It is created 0700.
	Dir string
	// CertFile, KeyFile and ChainFile select plug-in mode: the intermediate
	// CA certificate, its key, and the chain above it up to (and including)
	// the organisation's root. All three or none.
	CertFile, KeyFile, ChainFile string
	// WorkloadTTL is the lifetime of issued certificates; 0 means 24h.
	WorkloadTTL time.Duration
	// RootTTL is the lifetime of a generated root; 0 means ten years.
	RootTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MustExist makes New fail with ErrNoRoot instead of generating a root
	// when Dir has none. Tools that only read or extend a CA (gitmesh certs)
	// set it, so a mistyped directory never becomes a new, unrelated CA.
	MustExist bool
}

// ErrNoRoot is what New returns (wrapped) with MustExist when Dir holds no
// self-signed root.
var ErrNoRoot = errors.New("no CA here")

// signer is one CA key pair that signs leaves.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
	// chain is what follows a leaf in the chain it is sent with: the signing
	// certificate and, in plug-in mode, the intermediates above it. Roots
	// are left out: the peer has them in its trust bundle.
	chain []*x509.Certificate
}

// retired is a root that no longer signs but is still trusted until until.
type retired struct {
	cert  *x509.Certificate
	until time.Time
}

// CA issues workload and serving certificates. It is safe for concurrent
// use: the xDS listener asks for its serving certificate and trust pool on
// every handshake while the reconciler issues and rotates.
type CA struct {
	opts   Options
	plugin bool

	mu      sync.RWMutex
	signer  signer
	roots   []*x509.Certificate // trusted roots that still sign (plug-in: from the chain file)
	retired []retired
	gen     uint64 // changes whenever the signing key does

	serving servingCache
}

// New loads the CA, generating and persisting a self-signed root in Dir on
// first start (unless Options.MustExist).
func New(opts Options) (*CA, error) {
	if opts.WorkloadTTL <= 0 {
		opts.WorkloadTTL = DefaultWorkloadTTL
	}
	if opts.RootTTL <= 0 {
		opts.RootTTL = DefaultRootTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &CA{opts: opts, gen: 1}
	set := 0
	for _, f := range []string{opts.CertFile, opts.KeyFile, opts.ChainFile} {
		if f != "" {
			set++
		}
	}
	switch {
	case set == 3:
		c.plugin = true
		if err := c.loadPlugin(); err != nil {
			return nil, err
		}
		return c, nil
	case set != 0:
		return nil, errors.New("ca: a plug-in CA needs all of its certificate, key and chain files (or none, for the self-signed root)")
	case opts.Dir == "":
		return nil, errors.New("ca: a directory for the self-signed root is required")
	}
	if err := c.loadOrCreateRoot(); err != nil {
		return nil, err
	}
	return c, nil
}

// loadOrCreateRoot reads the persisted root, or generates one when the
// directory has none. A half-present root (cert without key) is an error,
// never silently replaced: replacing it would distrust every proxy.
func (c *CA) loadOrCreateRoot() error {
	dir := c.opts.Dir
	keyPath, certPath := filepath.Join(dir, rootKeyFile), filepath.Join(dir, rootCertFile)
	_, kerr := os.Stat(keyPath)
	_, cerr := os.Stat(certPath)
	switch {
	case errors.Is(kerr, fs.ErrNotExist) && errors.Is(cerr, fs.ErrNotExist):
		if c.opts.MustExist {
			return fmt.Errorf("ca: %s: %w: neither %s nor %s exists", dir, ErrNoRoot, rootCertFile, rootKeyFile)
		}
		return c.createRoot()
	case kerr != nil:
		return fmt.Errorf("ca: root key %s: %w", keyPath, kerr)
	case cerr != nil:
		return fmt.Errorf("ca: root certificate %s: %w", certPath, cerr)
	}
	if err := checkPrivate(keyPath); err != nil {
		return err
	}
	key, err := readKey(keyPath)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	certs, err := readCerts(certPath)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	root := certs[0]
	if err := matchKey(root, key); err != nil {
		return fmt.Errorf("ca: %s: %w", certPath, err)
	}
	old, err := readRetired(filepath.Join(dir, retiredRootFile))
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	c.signer = signer{cert: root, key: key, chain: []*x509.Certificate{root}}
	c.roots = []*x509.Certificate{root}
	c.retired = old
	return nil
}

// createRoot generates a root and writes it: the key first, 0600, through a
// temporary file, so no reader ever sees a partial key.
func (c *CA) createRoot() error {
	root, key, err := newRoot(c.opts.TrustDomain, c.opts.Now(), c.opts.RootTTL)
	if err != nil {
		return fmt.Errorf("ca: generate root: %w", err)
	}
	if err := c.writeRoot(root, key); err != nil {
		return err
	}
	c.signer = signer{cert: root, key: key, chain: []*x509.Certificate{root}}
	c.roots = []*x509.Certificate{root}
	return nil
}

func (c *CA) writeRoot(root *x509.Certificate, key crypto.Signer) error {
	if err := os.MkdirAll(c.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return fmt.Errorf("ca: encode root key: %w", err)
	}
	if err := writeAtomic(filepath.Join(c.opts.Dir, rootKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeAtomic(filepath.Join(c.opts.Dir, rootCertFile), encodeCerts(root), 0o644); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// loadPlugin reads the intermediate, its key and the chain, and checks that
// the intermediate really chains to a root of the chain file: a mismatch
// found now is better than every proxy refusing every peer later.
func (c *CA) loadPlugin() error {
	o := c.opts
	key, err := readKey(o.KeyFile)
	if err != nil {
		return fmt.Errorf("ca: --ca-key: %w", err)
	}
	certs, err := readCerts(o.CertFile)
	if err != nil {
		return fmt.Errorf("ca: --ca-cert: %w", err)
	}
	inter := certs[0]
	if !inter.IsCA || inter.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("ca: --ca-cert %s: %q is not a CA certificate (basic constraints CA and key usage certSign are required)", o.CertFile, inter.Subject.String())
	}
	if err := matchKey(inter, key); err != nil {
		return fmt.Errorf("ca: --ca-cert %s and --ca-key %s: %w", o.CertFile, o.KeyFile, err)
	}
	chain, err := readCerts(o.ChainFile)
	if err != nil {
		return fmt.Errorf("ca: --ca-chain: %w", err)
	}
	var roots, mids []*x509.Certificate
	for _, ct := range chain {
		if selfSigned(ct) {
			roots = append(roots, ct)
		} else if !ct.Equal(inter) {
			mids = append(mids, ct)
		}
	}
	if len(roots) == 0 {
		return fmt.Errorf("ca: --ca-chain %s: no self-signed root certificate in the chain", o.ChainFile)
	}
	pool, midPool := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, m := range mids {
		midPool.AddCert(m)
	}
	if _, err := inter.Verify(x509.VerifyOptions{Roots: pool, Intermediates: midPool, CurrentTime: o.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("ca: --ca-cert %s does not chain to a root in --ca-chain %s: %w", o.CertFile, o.ChainFile, err)
	}
	c.signer = signer{cert: inter, key: key, chain: append([]*x509.Certificate{inter}, mids...)}
	c.roots = roots
	return nil
}

// Plugin reports whether the CA signs with a loaded intermediate.
func (c *CA) Plugin() bool { return c.plugin }

// TrustDomain returns the trust domain the CA is limited to ("" for any).
func (c *CA) TrustDomain() string { return c.opts.TrustDomain }

// WorkloadTTL is the default lifetime of issued certificates.
func (c *CA) WorkloadTTL() time.Duration { return c.opts.WorkloadTTL }

// Generation changes whenever the signing key changes (a root rotation), so
// callers holding issued certificates know to re-issue them. The trust
// bundle also changes when a retired root's overlap ends; compare
// TrustBundle for that.
func (c *CA) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// Roots returns the trusted root certificates: the current root(s) and every
// retired root still within its overlap.
func (c *CA) Roots() []*x509.Certificate {
	c.prune()
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := append([]*x509.Certificate(nil), c.roots...)
	for _, r := range c.retired {
		out = append(out, r.cert)
	}
	return out
}

// TrustBundle returns Roots as PEM: what proxies validate peers against
// (the ROOTCA secret) and what `gitmesh certs root` prints.
func (c *CA) TrustBundle() []byte { return encodeCerts(c.Roots()...) }

// TrustPool returns Roots as a pool, for the xDS listener's client
// verification.
func (c *CA) TrustPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, r := range c.Roots() {
		pool.AddCert(r)
	}
	return pool
}

// NextBundleChange returns when a retired root leaves the trust bundle, or
// the zero time when none will.
func (c *CA) NextBundleChange() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var next time.Time
	for _, r := range c.retired {
		if next.IsZero() || r.until.Before(next) {
			next = r.until
		}
	}
	return next
}

// prune drops retired roots whose overlap has ended.
func (c *CA) prune() {
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.retired[:0]
	for _, r := range c.retired {
		if now.Before(r.until) {
			kept = append(kept, r)
		}
	}
	c.retired = kept
}

// checkPrivate refuses a key file others can read: a CA key that leaked to
// other local users is a compromised mesh. The check is internal/private's,
// shared with the webhook secret.
func checkPrivate(path string) error {
	if err := private.CheckFile(path); err != nil {
		return fmt.Errorf("ca: key file %w", err)
	}
	return nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// Certificates returns the CA certificates in use, for expiry reports: the
// trusted roots that still sign and the signing certificate when it is not
// one of them (a plug-in intermediate). Retired roots are left out: they
// are meant to expire.
func (c *CA) Certificates() []*x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := append([]*x509.Certificate(nil), c.roots...)
	if c.signer.cert != nil && !slices.ContainsFunc(out, c.signer.cert.Equal) {
		out = append(out, c.signer.cert)
	}
	return out
}
