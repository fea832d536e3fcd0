package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for lifetimes and overlaps.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const reviewsID = "spiffe://cluster.local/ns/default/sa/reviews"

// verify checks an issued chain against roots alone (intermediates from the
// chain itself), for client and server use, at the given time.
func verify(t *testing.T, is *Issued, roots []*x509.Certificate, at time.Time) error {
	t.Helper()
	chain, err := ParseCerts(is.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool, mids := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	for _, m := range chain[1:] {
		mids.AddCert(m)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: mids, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}})
	return err
}

func TestSelfSignedRootPersists(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	c1, err := New(Options{TrustDomain: "cluster.local", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, rootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("root key mode %04o, want 0600", perm)
	}
	is, err := c1.Issue(reviewsID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(is.Leaf.URIs) != 1 || is.Leaf.URIs[0].String() != reviewsID {
		t.Errorf("URI SANs = %v, want exactly %s", is.Leaf.URIs, reviewsID)
	}
	if got := is.NotAfter.Sub(is.IssuedAt); got != DefaultWorkloadTTL {
		t.Errorf("lifetime %v, want %v", got, DefaultWorkloadTTL)
	}
	if is.Leaf.IsCA || is.Leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("leaf IsCA=%v alg=%v, want a non-CA ECDSA leaf", is.Leaf.IsCA, is.Leaf.PublicKeyAlgorithm)
	}
	if !bytes.Contains(is.KeyPEM, []byte("PRIVATE KEY")) {
		t.Error("no private key PEM")
	}
	if err := verify(t, is, c1.Roots(), time.Now()); err != nil {
		t.Errorf("leaf does not verify against the trust bundle: %v", err)
	}

	// A restart on the same directory is the same CA.
	c2, err := New(Options{TrustDomain: "cluster.local", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1.TrustBundle(), c2.TrustBundle()) {
		t.Error("the root changed across a restart")
	}
	if err := verify(t, is, c2.Roots(), time.Now()); err != nil {
		t.Errorf("a leaf of the first run does not verify after restart: %v", err)
	}

	// A key others can read is refused.
	os.Chmod(filepath.Join(dir, rootKeyFile), 0o644)
	if _, err := New(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("world-readable root key: err = %v", err)
	}
}

func TestIssueRefusesBadIdentities(t *testing.T) {
	c, err := New(Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{
		"", "reviews", "https://cluster.local/ns/a/sa/b", "spiffe://cluster.local", "spiffe://cluster.local/",
		"spiffe://other.domain/ns/a/sa/b", "spiffe://cluster.local:8443/ns/a/sa/b", "spiffe://cluster.local/ns/a?x=1",
		"spiffe://u@cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns//sa/b",
	} {
		if _, err := c.Issue(id, 0); err == nil {
			t.Errorf("Issue(%q) succeeded, want an error", id)
		}
	}
}

// testCA makes a CA certificate and key signed by parent (self-signed when
// parent is nil).
func testCA(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func writePEM(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPluginCA is issue 5's "plug-in CA" acceptance: an intermediate signed
// by an organisation's root signs leaves whose chains verify against that
// root alone.
func TestPluginCA(t *testing.T) {
	dir := t.TempDir()
	orgRoot, orgKey := testCA(t, "example org root", nil, nil)
	inter, interKey := testCA(t, "mesh intermediate", orgRoot, orgKey)
	interKeyPEM, _ := encodeKey(interKey)
	certFile := writePEM(t, dir, "ca-cert.pem", encodeCerts(inter))
	keyFile := writePEM(t, dir, "ca-key.pem", interKeyPEM)
	chainFile := writePEM(t, dir, "cert-chain.pem", encodeCerts(inter, orgRoot))

	c, err := New(Options{CertFile: certFile, KeyFile: keyFile, ChainFile: chainFile})
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.Issue(reviewsID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := ParseCerts(is.CertPEM)
	if len(chain) != 2 || !chain[1].Equal(inter) {
		t.Fatalf("chain has %d certificates, want the leaf and the intermediate", len(chain))
	}
	if err := verify(t, is, []*x509.Certificate{orgRoot}, time.Now()); err != nil {
		t.Errorf("leaf chain does not verify against the organisation's root: %v", err)
	}
	if roots := c.Roots(); len(roots) != 1 || !roots[0].Equal(orgRoot) {
		t.Errorf("trust bundle is not the organisation's root")
	}
	if err := c.RotateRoot(0); err == nil {
		t.Error("RotateRoot of a plug-in CA succeeded")
	}

	otherRoot, _ := testCA(t, "another root", nil, nil)
	wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	wrongKeyPEM, _ := encodeKey(wrongKey)
	for name, o := range map[string]Options{
		"only two files":         {CertFile: certFile, KeyFile: keyFile},
		"key of another cert":    {CertFile: certFile, KeyFile: writePEM(t, dir, "wrong-key.pem", wrongKeyPEM), ChainFile: chainFile},
		"chain to another root":  {CertFile: certFile, KeyFile: keyFile, ChainFile: writePEM(t, dir, "other.pem", encodeCerts(otherRoot))},
		"chain without any root": {CertFile: certFile, KeyFile: keyFile, ChainFile: writePEM(t, dir, "noroot.pem", encodeCerts(inter))},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(interKeyPEM[30:60])) {
			t.Errorf("%s: error leaks key material: %v", name, err)
		}
	}
}

// TestRotateRoot: old and new roots are served together during the overlap;
// new leaves come from the new root; the old root leaves the bundle when the
// overlap ends, also across a restart.
func TestRotateRoot(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	dir := t.TempDir()
	c, err := New(Options{Dir: dir, Now: clk.Now, WorkloadTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	oldRoot := c.Roots()[0]
	before, _ := c.Issue(reviewsID, 0)
	gen := c.Generation()

	if err := c.RotateRoot(2 * time.Hour); err != nil {
		t.Fatal(err)
	}
	if c.Generation() == gen {
		t.Error("generation unchanged by a root rotation")
	}
	roots := c.Roots()
	if len(roots) != 2 || roots[1].Equal(roots[0]) || !roots[1].Equal(oldRoot) {
		t.Fatalf("bundle after rotation has %d roots, want the new one and the old one", len(roots))
	}
	newRoot := roots[0]
	after, _ := c.Issue(reviewsID, 0)
	if err := verify(t, after, []*x509.Certificate{newRoot}, clk.Now()); err != nil {
		t.Errorf("a new leaf does not verify against the new root: %v", err)
	}
	if err := verify(t, after, []*x509.Certificate{oldRoot}, clk.Now()); err == nil {
		t.Error("a new leaf verifies against the old root: it was signed by the old key")
	}
	if err := verify(t, before, c.Roots(), clk.Now()); err != nil {
		t.Errorf("an old leaf does not verify during the overlap: %v", err)
	}
	if after.Generation == before.Generation {
		t.Error("leaves of both roots carry one generation")
	}

	// A restart during the overlap keeps both roots.
	c2, err := New(Options{Dir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Roots()) != 2 || !c2.Roots()[0].Equal(newRoot) {
		t.Errorf("after restart: %d roots, want the new root first and the retired one", len(c2.Roots()))
	}
	if next := c.NextBundleChange(); !next.Equal(clk.Now().Add(2 * time.Hour)) {
		t.Errorf("NextBundleChange = %v, want the overlap's end", next)
	}

	clk.Add(2*time.Hour + time.Second)
	gen = c.Generation()
	bundle := c.TrustBundle()
	if roots := c.Roots(); len(roots) != 1 || !roots[0].Equal(newRoot) {
		t.Errorf("after the overlap: %d roots, want only the new one", len(roots))
	}
	if c.Generation() != gen {
		t.Error("the end of an overlap changed the signing generation")
	}
	if !bytes.Equal(c.TrustBundle(), bundle) {
		t.Error("trust bundle changed after the overlap had already ended")
	}
	if roots := c2.Roots(); len(roots) != 1 {
		t.Errorf("restarted CA after the overlap: %d roots, want 1", len(roots))
	}
}

func TestServingCert(t *testing.T) {
	clk := &fakeClock{now: time.Now()}
	c, err := New(Options{Dir: t.TempDir(), Now: clk.Now, WorkloadTTL: 3 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"localhost", "gitmesh.gitmesh-system.svc", "10.0.0.7"}
	s1, err := c.ServingCert(names)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s1.Leaf
	for _, name := range []string{"localhost", "gitmesh.gitmesh-system.svc", "127.0.0.1", "::1", "10.0.0.7"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("serving cert: %v", err)
		}
	}
	if s2, _ := c.ServingCert(names); s2 != s1 {
		t.Error("serving cert re-issued on every call; want it cached")
	}
	clk.Add(2*time.Hour + time.Minute) // past 2/3 of its life
	if s3, _ := c.ServingCert(names); s3 == s1 {
		t.Error("serving cert not renewed with a third of its life left")
	}
	s4, _ := c.ServingCert(names)
	c.RotateRoot(time.Hour)
	if s5, _ := c.ServingCert(names); s5 == s4 {
		t.Error("serving cert not re-issued after a root rotation")
	}
}

// BenchmarkIssue measures one ECDSA P-256 workload certificate: key
// generation, signing and PEM encoding.
func BenchmarkIssue(b *testing.B) {
	c, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := c.Issue(reviewsID, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestMustExist: with MustExist a directory without a root is refused with
// ErrNoRoot and nothing is written; once a root exists it loads.
func TestMustExist(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo", "ca")
	_, err := New(Options{Dir: dir, MustExist: true})
	if !errors.Is(err, ErrNoRoot) {
		t.Fatalf("New(MustExist) on an empty dir = %v, want ErrNoRoot", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Fatalf("New(MustExist) created %s: %v", dir, serr)
	}
	first, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	again, err := New(Options{Dir: dir, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.TrustBundle(), again.TrustBundle()) {
		t.Error("MustExist loaded a different root")
	}
}

// TestSignPublicKey: a caller's key is signed for the given id and nothing
// else; weak or unknown keys are refused.
func TestSignPublicKey(t *testing.T) {
	c, err := New(Options{TrustDomain: "cluster.local", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is, err := c.SignPublicKey("spiffe://cluster.local/ns/a/sa/b", key.Public(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if is.KeyPEM != nil || len(is.Leaf.URIs) != 1 || is.Leaf.URIs[0].String() != "spiffe://cluster.local/ns/a/sa/b" || !is.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Errorf("signed %v over another key or with a key PEM", is.Leaf.URIs)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := c.SignPublicKey("spiffe://cluster.local/ns/a/sa/b", weak.Public(), time.Hour); err == nil {
		t.Error("a 1024-bit RSA key was signed")
	}
	if _, err := c.SignPublicKey("spiffe://other.domain/ns/a/sa/b", key.Public(), time.Hour); err == nil {
		t.Error("an id outside the trust domain was signed")
	}
}
