package reconciler

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
)

// secretStore supplies the PEM bytes of the SDS secrets render planned
// (Bundle.Secrets) from the CA and the gateway credentials: `default` (the
// class's own certificate and key), `ROOTCA` (the trust bundle) and, for
// gateways, each credentialName (and NAME-cacert for MUTUAL). render.Secret
// builds the protos; the store decides when to issue and what to keep.
//
// Certificates are issued once per identity — every instance of a class,
// and every class with the same service account, shares one — and cached
// until a third of their life is left. A class's secret list is rebuilt
// only when one of its secrets changed, and its ClassConfig pointer is
// reused otherwise, so a rotation is a secrets-only Apply that touches only
// the classes whose certificates were re-issued.
//
// The store belongs to the reconciler's loop goroutine; it has no lock.
type secretStore struct {
	ca           *ca.CA
	creds        CredentialSource
	withholdKeys bool
	ttl          time.Duration
	now          func() time.Time
	log          *slog.Logger
	metrics      *metrics

	issued   map[string]issuedCert    // by SPIFFE id
	identity map[string]*xds.Resource // the `default` secret by SPIFFE id
	root     *xds.Resource
	rootPEM  []byte
	credRes  map[string]*xds.Resource // gateway secrets by SDS name

	// What was served last: the update without secrets, the plan, and the
	// per-class configs and secret lists built from them.
	base  xds.Update
	plan  map[string]snapshot.ClassSecrets
	out   map[string]*xds.ClassConfig
	lists map[string][]*xds.Resource
	// retryAt is set after a failed rotation, so the loop tries again.
	retryAt time.Time
}

func newSecretStore(o Options, m *metrics, log *slog.Logger) *secretStore {
	return &secretStore{
		ca: o.CA, creds: o.Credentials, withholdKeys: o.WithholdKeys, ttl: o.WorkloadTTL, now: o.Now,
		log: log, metrics: m,
		issued: map[string]issuedCert{}, identity: map[string]*xds.Resource{}, credRes: map[string]*xds.Resource{},
	}
}

// enabled reports whether there is anything to serve.
func (s *secretStore) enabled() bool { return s.ca != nil || s.creds != nil }

// build overlays secrets on base according to plan, issuing what is missing
// or due, and returns the update to serve with the number of classes whose
// secrets changed. On error nothing is remembered: the previous state stays.
func (s *secretStore) build(base xds.Update, plan map[string]snapshot.ClassSecrets) (xds.Update, int, error) {
	if !s.enabled() {
		return base, 0, nil
	}
	if err := s.refreshRoot(); err != nil {
		return xds.Update{}, 0, err
	}
	if err := s.refreshIdentities(plan); err != nil {
		return xds.Update{}, 0, err
	}
	creds, err := s.loadCredentials(plan)
	if err != nil {
		return xds.Update{}, 0, err
	}

	out := xds.Update{Revision: base.Revision, Classes: make(map[string]*xds.ClassConfig, len(base.Classes))}
	outCfg := make(map[string]*xds.ClassConfig, len(base.Classes))
	lists := make(map[string][]*xds.Resource, len(base.Classes))
	memo := map[string][]*xds.Resource{}
	changed := 0
	for class, cfg := range base.Classes {
		cs := plan[class]
		key := cs.Identity + "\x00" + strings.Join(cs.Credentials, "\x00")
		list, ok := memo[key]
		if !ok {
			list = s.listFor(cs, creds)
			memo[key] = list
		}
		if prev := s.lists[class]; prev != nil && s.base.Classes[class].Same(cfg) && slices.Equal(prev, list) {
			// Unchanged (the same content version, or the same object): the
			// config served last, which Apply skips in O(1).
			lists[class], outCfg[class], out.Classes[class] = prev, s.out[class], s.out[class]
			continue
		}
		changed++
		res := map[string][]*xds.Resource{}
		var shared *xds.ClassConfig
		if cfg != nil {
			res = maps.Clone(cfg.Resources)
			shared = cfg.Shared
		}
		if len(list) > 0 {
			res[snapshot.SecretType] = list
		} else {
			delete(res, snapshot.SecretType)
		}
		c := &xds.ClassConfig{Resources: res, Shared: shared}
		lists[class], outCfg[class], out.Classes[class] = list, c, c
	}
	s.base, s.plan, s.out, s.lists = base, plan, outCfg, lists
	return out, changed, nil
}

// listFor is one class's secrets, sorted by name as xds.Update requires.
func (s *secretStore) listFor(cs snapshot.ClassSecrets, creds map[string]*xds.Resource) []*xds.Resource {
	var list []*xds.Resource
	if s.root != nil {
		list = append(list, s.root)
	}
	if r := s.identity[cs.Identity]; r != nil {
		list = append(list, r)
	}
	for _, name := range cs.Credentials {
		if r := creds[name]; r != nil {
			list = append(list, r)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// refreshRoot rebuilds ROOTCA when the CA's bundle changed (a root rotation
// or the end of its overlap).
func (s *secretStore) refreshRoot() error {
	if s.ca == nil {
		return nil
	}
	bundle := s.ca.TrustBundle()
	if s.root != nil && bytes.Equal(bundle, s.rootPEM) {
		return nil
	}
	r, err := render.Secret(render.SecretRootCA, render.SecretPEM{TrustedCA: bundle})
	if err != nil {
		return err
	}
	s.root, s.rootPEM = r, bundle
	return nil
}

// refreshIdentities issues a certificate for every identity in plan that
// has none, is due for renewal or was signed under an older root, and
// forgets identities no class has any more.
func (s *secretStore) refreshIdentities(plan map[string]snapshot.ClassSecrets) error {
	if s.ca == nil || s.withholdKeys {
		return nil
	}
	need := map[string]bool{}
	for _, cs := range plan {
		if cs.Identity != "" {
			need[cs.Identity] = true
		}
	}
	now, gen := s.now(), s.ca.Generation()
	var due []string
	for _, id := range slices.Sorted(maps.Keys(need)) {
		if is, ok := s.issued[id]; ok && now.Before(is.renewAt) && is.gen == gen {
			continue
		}
		due = append(due, id)
	}
	fresh, err := s.issueAll(due)
	if err != nil {
		return err
	}
	for i, id := range due {
		s.issued[id], s.identity[id] = fresh[i].cert, fresh[i].res
	}
	issued := len(due)
	for id := range s.issued {
		if !need[id] {
			delete(s.issued, id)
			delete(s.identity, id)
		}
	}
	if issued > 0 {
		s.metrics.issued.Add(float64(issued))
		s.log.Info("issued workload certificates", "count", issued, "identities", len(need))
	}
	return nil
}

// issuedCert is what the store keeps of an issued certificate besides its
// secret: when it is due. The parsed certificate is not kept, which at
// 10,000 identities is the difference of tens of megabytes.
type issuedCert struct {
	renewAt time.Time
	gen     uint64
}

type issueResult struct {
	cert issuedCert
	res  *xds.Resource
}

// issueAll issues certificates for ids on every core: signing is pure CPU,
// and at a cold start of 10,000 identities it is the whole cost. Results
// come back in the order of ids; the caller stores them, so the store
// itself is still touched by one goroutine only.
func (s *secretStore) issueAll(ids []string) ([]issueResult, error) {
	out := make([]issueResult, len(ids))
	errs := make([]error, len(ids))
	workers := min(runtime.GOMAXPROCS(0), len(ids))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				out[i], errs[i] = s.issueOne(ids[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *secretStore) issueOne(id string) (issueResult, error) {
	is, err := s.ca.Issue(id, s.ttl)
	if err != nil {
		return issueResult{}, fmt.Errorf("issue certificate for %s: %w", id, err)
	}
	r, err := render.Secret(render.SecretDefault, render.SecretPEM{CertChain: is.CertPEM, Key: is.KeyPEM})
	if err != nil {
		return issueResult{}, err
	}
	return issueResult{cert: issuedCert{renewAt: is.RenewAt(), gen: is.Generation}, res: r}, nil
}

// loadCredentials reads every gateway credential the plan names. Without a
// credential source they are not served (and render was not told to check
// them), which is logged once per build.
func (s *secretStore) loadCredentials(plan map[string]snapshot.ClassSecrets) (map[string]*xds.Resource, error) {
	want := map[string]bool{}
	for _, cs := range plan {
		for _, n := range cs.Credentials {
			want[n] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	if s.creds == nil {
		s.log.Warn("gateway credentials are named in the mesh but no credential source is configured; they are not served",
			"credentials", slices.Sorted(maps.Keys(want)))
		return nil, nil
	}
	out := map[string]*xds.Resource{}
	loaded := map[string]*Credential{}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		base, cacert := strings.CutSuffix(name, render.CACertSuffix)
		c, ok := loaded[base]
		if !ok {
			var err error
			if c, err = s.creds.Credential(base); err != nil {
				return nil, err
			}
			loaded[base] = c
		}
		var pem render.SecretPEM
		switch {
		case cacert && len(c.CACertPEM) == 0:
			return nil, fmt.Errorf("credential %q: a MUTUAL listener needs its client CA (ca.crt)", base)
		case cacert:
			pem = render.SecretPEM{TrustedCA: c.CACertPEM}
		case s.withholdKeys:
			continue // a server key never crosses a plaintext xDS stream
		default:
			pem = render.SecretPEM{CertChain: c.CertPEM, Key: c.KeyPEM}
		}
		r, err := render.Secret(name, pem)
		if err != nil {
			return nil, err
		}
		if prev := s.credRes[name]; prev != nil && prev.Version == r.Version {
			r = prev // unchanged files: keep the pointer, so the class is untouched
		}
		out[name] = r
	}
	s.credRes = out
	return out, nil
}

// due returns when the next certificate renewal or trust bundle change is
// due, or the zero time when nothing is issued.
func (s *secretStore) due() time.Time {
	if !s.retryAt.IsZero() {
		return s.retryAt // after a failure, not before: no busy loop
	}
	var next time.Time
	for _, is := range s.issued {
		if at := is.renewAt; next.IsZero() || at.Before(next) {
			next = at
		}
	}
	if s.ca != nil {
		if at := s.ca.NextBundleChange(); !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

// identities returns class → SPIFFE id of the plan, for admission.
func identities(plan map[string]snapshot.ClassSecrets) map[string]string {
	out := make(map[string]string, len(plan))
	for class, cs := range plan {
		out[class] = cs.Identity
	}
	return out
}
