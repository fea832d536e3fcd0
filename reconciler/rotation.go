package reconciler

import (
	"strings"
	"time"

	"github.com/gitmesh/gitmesh/reconciler/state"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// withSecrets overlays the secrets of plan on base and publishes the
// classes' identities for admission. Identities are published before the
// caller applies, so a proxy of a new class that connects the moment its
// class is served is already recognised.
func (r *Reconciler) withSecrets(base xds.Update, plan map[string]state.ClassSecrets) (xds.Update, error) {
	u, _, err := r.secrets.build(base, plan)
	if err != nil {
		return xds.Update{}, err
	}
	ids := identities(plan)
	r.ids.Store(&ids)
	return u, nil
}

// IdentityOf returns the SPIFFE id of a served proxy class, for the xDS
// server's admission check: a stream may only ask for a class whose
// identity is the one in its client certificate. Safe for concurrent use.
func (r *Reconciler) IdentityOf(class string) (string, bool) {
	ids := r.ids.Load()
	if ids == nil {
		return "", false
	}
	id, ok := (*ids)[class]
	return id, ok && id != ""
}

// TrustDomain returns the trust domain of the served mesh's identities,
// for the certificate signing service; false before any class with an
// identity is served. Safe for concurrent use.
func (r *Reconciler) TrustDomain() (string, bool) {
	ids := r.ids.Load()
	if ids == nil {
		return "", false
	}
	for _, id := range *ids {
		if rest, ok := strings.CutPrefix(id, "spiffe://"); ok {
			if td, _, ok := strings.Cut(rest, "/"); ok && td != "" {
				return td, true // one mesh, one trust domain
			}
		}
	}
	return "", false
}

// RotateSecrets re-issues the certificates that are due (a third of their
// life left, or signed by a rotated-out root), refreshes the trust bundle
// and gateway credentials, and applies the result. Only the classes whose
// secrets changed get new configs, so a delta stream receives the changed
// secrets and nothing else. Run calls it when the earliest certificate is
// due; it returns the number of classes that changed.
func (r *Reconciler) RotateSecrets() int {
	if !r.secrets.enabled() || r.secrets.plan == nil {
		return 0
	}
	start := time.Now()
	u, changed, err := r.secrets.build(r.secrets.base, r.secrets.plan)
	if err != nil {
		// Retry soon; the certificates out there are still valid for a
		// third of their life.
		r.log.Error("certificate rotation failed; will retry", "err", err)
		r.secrets.retryAt = r.opts.Now().Add(r.opts.RetryBase)
		r.mu.Lock()
		r.rotationErr = err.Error()
		r.mu.Unlock()
		return 0
	}
	r.secrets.retryAt = time.Time{}
	r.mu.Lock()
	r.rotationErr = ""
	r.mu.Unlock()
	if changed == 0 {
		return 0
	}
	if err := r.opts.Server.Apply(u); err != nil {
		r.log.Error("could not apply rotated certificates", "err", err)
		return 0
	}
	r.metrics.rotations.Inc()
	r.log.Info("rotated secrets", "classes", changed, "took", time.Since(start).Round(time.Millisecond))
	return changed
}
