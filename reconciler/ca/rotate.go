package ca

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"time"
)

// RotateRoot replaces the self-signed root with a new one. The old root
// stays in the trust bundle for overlap (0 means DefaultRootOverlap), so
// certificates it signed keep verifying while the new root signs every new
// leaf; proxies receive the two-root bundle before they receive any leaf of
// the new root, because the caller re-pushes ROOTCA and the leaves together
// and every proxy's old leaf is still trusted by the new bundle.
//
// The new root is persisted before it is used: a crash leaves either the
// old root or the new one with the old one retired, never a root without
// its key.
func (c *CA) RotateRoot(overlap time.Duration) error {
	if c.plugin {
		return errPlugin
	}
	if overlap <= 0 {
		overlap = DefaultRootOverlap
	}
	now := c.opts.Now()
	root, key, err := newRoot(c.opts.TrustDomain, now, c.opts.RootTTL)
	if err != nil {
		return fmt.Errorf("ca: generate root: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.signer.cert
	retiredNext := append(append([]retired(nil), c.retired...), retired{cert: old, until: now.Add(overlap)})
	// Retired roots first: a reader of a half-rotated directory then trusts
	// both roots whichever root file it finds.
	if err := writeAtomic(filepath.Join(c.opts.Dir, retiredRootFile), encodeRetired(retiredNext), 0o644); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := c.writeRoot(root, key); err != nil {
		return err
	}
	c.signer = signer{cert: root, key: key, chain: []*x509.Certificate{root}}
	c.roots = []*x509.Certificate{root}
	c.retired = retiredNext
	c.serving = servingCache{}
	c.gen++
	return nil
}
