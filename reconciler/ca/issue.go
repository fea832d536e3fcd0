package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// clockSkew backdates leaves so that a peer whose clock runs a little
// behind does not reject a certificate issued a moment ago.
const clockSkew = time.Minute

// Issued is one certificate with its key. KeyPEM is secret: hand it only to
// the identity it was issued for, and never log, persist or print it.
type Issued struct {
	// SPIFFEID is the certificate's only URI SAN.
	SPIFFEID string
	// CertPEM is the leaf followed by the chain up to (not including) the
	// root, the order TLS sends it in.
	CertPEM []byte
	// KeyPEM is the leaf's PKCS#8 private key.
	KeyPEM []byte
	// IssuedAt is when it was signed (the certificate's NotBefore is
	// backdated by a minute for clock skew); NotAfter is when it expires.
	IssuedAt, NotAfter time.Time
	// Generation is the CA generation that signed it; a newer generation
	// (root rotation) means it must be re-issued.
	Generation uint64
	// Leaf is the parsed leaf certificate.
	Leaf *x509.Certificate
}

// RenewAt is when the certificate is due for re-issue: when a third of its
// lifetime is left, so that a proxy that misses one push still has time to
// get the next before expiry (Istio's agent rotates at the same point).
func (i *Issued) RenewAt() time.Time {
	return i.NotAfter.Add(-i.NotAfter.Sub(i.IssuedAt) / 3)
}

// Issue signs a fresh ECDSA P-256 key for spiffeID with the given lifetime
// (0 means Options.WorkloadTTL). The certificate carries spiffeID as its
// only URI SAN and may be used for both ends of mutual TLS.
func (c *CA) Issue(spiffeID string, ttl time.Duration) (*Issued, error) {
	if err := c.checkID(spiffeID); err != nil {
		return nil, err
	}
	u, _ := url.Parse(spiffeID)
	if ttl <= 0 {
		ttl = c.opts.WorkloadTTL
	}
	return c.sign(workloadTemplate(u), spiffeID, ttl, nil)
}

// SignPublicKey signs a certificate for spiffeID over a key the caller
// holds (the public key of a CSR), like Issue otherwise: the SPIFFE id is
// the only URI SAN, whatever else the request carried. The Issued value
// has no KeyPEM.
func (c *CA) SignPublicKey(spiffeID string, pub crypto.PublicKey, ttl time.Duration) (*Issued, error) {
	if err := c.checkID(spiffeID); err != nil {
		return nil, err
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("ca: RSA key of %d bits, want at least 2048", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("ca: unsupported public key type %T", pub)
	}
	u, _ := url.Parse(spiffeID)
	if ttl <= 0 {
		ttl = c.opts.WorkloadTTL
	}
	return c.sign(workloadTemplate(u), spiffeID, ttl, pub)
}

func workloadTemplate(u *url.URL) *x509.Certificate {
	return &x509.Certificate{
		URIs:        []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// checkID accepts spiffe://TRUST-DOMAIN/PATH with nothing else (no port,
// user, query or fragment), in the CA's trust domain when one is set.
func (c *CA) checkID(id string) error {
	u, err := url.Parse(id)
	if err != nil || u.Scheme != "spiffe" || u.Host == "" || u.User != nil || u.Port() != "" ||
		u.RawQuery != "" || u.Fragment != "" || len(u.Path) < 2 || strings.Contains(u.Path, "//") {
		return fmt.Errorf("ca: %q is not a SPIFFE id (spiffe://TRUST-DOMAIN/PATH)", id)
	}
	if td := c.opts.TrustDomain; td != "" && u.Host != td {
		return fmt.Errorf("ca: %q is outside trust domain %q", id, td)
	}
	return nil
}

// sign completes tmpl as a leaf valid for ttl and signs it with the
// current signer: over pub when it is set, else over a fresh ECDSA P-256
// key returned as KeyPEM.
func (c *CA) sign(tmpl *x509.Certificate, id string, ttl time.Duration, pub crypto.PublicKey) (*Issued, error) {
	var key *ecdsa.PrivateKey
	if pub == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("ca: generate key: %w", err)
		}
		pub = key.Public()
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := c.opts.Now()
	c.mu.RLock()
	s, gen := c.signer, c.gen
	c.mu.RUnlock()
	notAfter := now.Add(ttl)
	if notAfter.After(s.cert.NotAfter) {
		notAfter = s.cert.NotAfter // a leaf never outlives its issuer
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-clockSkew)
	tmpl.NotAfter = notAfter
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, pub, s.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate for %q: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse issued certificate: %w", err)
	}
	var keyPEM []byte
	if key != nil {
		if keyPEM, err = encodeKey(key); err != nil {
			return nil, fmt.Errorf("ca: encode key: %w", err)
		}
	}
	return &Issued{
		SPIFFEID: id, CertPEM: encodeCerts(append([]*x509.Certificate{leaf}, s.chain...)...), KeyPEM: keyPEM,
		IssuedAt: now, NotAfter: notAfter, Generation: gen, Leaf: leaf,
	}, nil
}

// newRoot generates a self-signed ECDSA P-256 root.
func newRoot(trustDomain string, now time.Time, ttl time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	org := "gitmesh"
	if trustDomain != "" {
		org = trustDomain
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name tells two generations of root apart in
		// `openssl x509 -text` and in proxies' config dumps.
		Subject:               pkix.Name{Organization: []string{org}, CommonName: "gitmesh root CA " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if trustDomain != "" {
		tmpl.URIs = []*url.URL{{Scheme: "spiffe", Host: trustDomain}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("ca: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never 0
}

// servingCache holds gitmesh's own serving certificate between handshakes.
type servingCache struct {
	cert   *tls.Certificate
	issued *Issued
	names  []string
}

// ServingCert returns the certificate for gitmesh's xDS listener: DNS SANs
// from names plus the loopback addresses, signed like any leaf. It is cached
// and re-issued at the same point workload certificates are, and after a
// root rotation, so a tls.Config that calls it from GetCertificate rotates
// without a restart.
func (c *CA) ServingCert(names []string) (*tls.Certificate, error) {
	gen := c.Generation()
	now := c.opts.Now()
	c.mu.RLock()
	sc := c.serving
	c.mu.RUnlock()
	if sc.cert != nil && sc.issued.Generation == gen && now.Before(sc.issued.RenewAt()) && slices.Equal(sc.names, names) {
		return sc.cert, nil
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "gitmesh xds"},
		DNSNames:    names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	tmpl.DNSNames = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return net.ParseIP(n) != nil })
	is, err := c.sign(tmpl, "xds serving certificate", c.opts.WorkloadTTL, nil)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: serving certificate: %w", err)
	}
	cert.Leaf = is.Leaf
	c.mu.Lock()
	c.serving = servingCache{cert: &cert, issued: is, names: slices.Clone(names)}
	c.mu.Unlock()
	return &cert, nil
}

// errPlugin is returned by operations that need the root key.
var errPlugin = errors.New("ca: the root of a plug-in CA is managed outside gitmesh; rotate it by replacing --ca-cert, --ca-key and --ca-chain")
