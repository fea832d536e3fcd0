package statusgit

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// loadSigningKey reads an armored OpenPGP private key (the first entity
// with a private key in the file) and decrypts it with the passphrase in
// passFile when it is encrypted. The key is loaded once, at New: signing
// every few seconds should not re-read and re-decrypt it each time.
func loadSigningKey(keyFile, passFile string) (*openpgp.Entity, error) {
	f, err := os.Open(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer f.Close()
	list, err := openpgp.ReadArmoredKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	var key *openpgp.Entity
	for _, e := range list {
		if e.PrivateKey != nil {
			key = e
			break
		}
	}
	if key == nil {
		return nil, fmt.Errorf("signing key %s: no private key in file", keyFile)
	}
	if encrypted(key) {
		if passFile == "" {
			return nil, fmt.Errorf("signing key %s is encrypted and no passphrase file is given", keyFile)
		}
		pass, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("signing key passphrase: %w", err)
		}
		p := strings.TrimSuffix(strings.TrimSuffix(string(pass), "\n"), "\r")
		if err := key.DecryptPrivateKeys([]byte(p)); err != nil {
			// The error text never holds the passphrase; say which file.
			return nil, fmt.Errorf("decrypt signing key %s with passphrase from %s: %w", keyFile, passFile, err)
		}
	}
	return key, nil
}

func encrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && e.PrivateKey.Encrypted {
		return true
	}
	for _, s := range e.Subkeys {
		if s.PrivateKey != nil && s.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// sign returns the armored detached signature over the commit as encoded
// without a signature, which is what `git verify-commit` and go-git's
// Commit.Verify check. The signature time is the commit time, so the
// signature does not depend on anything but the commit.
func sign(key *openpgp.Entity, c *object.Commit, now time.Time) (string, error) {
	var enc plumbing.MemoryObject
	if err := c.EncodeWithoutSignature(&enc); err != nil {
		return "", fmt.Errorf("encode commit for signing: %w", err)
	}
	r, err := enc.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	var b bytes.Buffer
	cfg := &packet.Config{Time: func() time.Time { return now }}
	if err := openpgp.ArmoredDetachSign(&b, key, r, cfg); err != nil {
		return "", fmt.Errorf("sign commit: %w", err)
	}
	return b.String(), nil
}
