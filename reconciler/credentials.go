package reconciler

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Credential is a gateway's TLS credential, named by a listener's
// tls.credentialName in the mesh and loaded from outside Git: the server
// certificate chain and key, and for MUTUAL listeners the client CA bundle.
type Credential struct {
	Name      string
	CertPEM   []byte
	KeyPEM    []byte
	CACertPEM []byte // empty when the credential has no client CA
}

// CredentialSource loads gateway credentials by name. Implementations must
// never put key material into errors.
type CredentialSource interface {
	// Names lists the credentials that can be served, so render refuses a
	// revision naming one that cannot.
	Names() (map[string]bool, error)
	// Credential loads one credential.
	Credential(name string) (*Credential, error)
}

// CredentialDir reads credentials laid out like mounted Kubernetes TLS
// Secrets: DIR/NAME/tls.crt, DIR/NAME/tls.key and, optionally,
// DIR/NAME/ca.crt (the client CA of MUTUAL listeners).
type CredentialDir struct{ Dir string }

var _ CredentialSource = CredentialDir{}

// Names lists the subdirectories holding both tls.crt and tls.key.
func (d CredentialDir) Names() (map[string]bool, error) {
	entries, err := os.ReadDir(d.Dir)
	if err != nil {
		return nil, fmt.Errorf("credentials dir: %w", err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if exists(filepath.Join(d.Dir, e.Name(), "tls.crt")) && exists(filepath.Join(d.Dir, e.Name(), "tls.key")) {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// Credential reads and checks one credential: the key must match the
// certificate, so a half-updated pair is refused instead of served.
func (d CredentialDir) Credential(name string) (*Credential, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("credential %q: not a plain name", name)
	}
	dir := filepath.Join(d.Dir, name)
	c := &Credential{Name: name}
	var err error
	if c.CertPEM, err = os.ReadFile(filepath.Join(dir, "tls.crt")); err != nil {
		return nil, fmt.Errorf("credential %q: %w", name, err)
	}
	if c.KeyPEM, err = os.ReadFile(filepath.Join(dir, "tls.key")); err != nil {
		return nil, fmt.Errorf("credential %q: %w", name, err)
	}
	if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		// crypto/tls's errors describe the mismatch, never the key bytes.
		return nil, fmt.Errorf("credential %q: tls.crt and tls.key: %w", name, err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	switch {
	case err == nil:
		c.CACertPEM = ca
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("credential %q: %w", name, err)
	}
	return c, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
