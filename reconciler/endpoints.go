package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/reconciler/ca"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/schema/model"
)

// EndpointSource supplies endpoints discovered at run time; the Kubernetes
// discovery (reconciler/kube) is one.
type EndpointSource interface {
	// Endpoints returns the ready endpoints of m's discovered services,
	// keyed "SERVICE/VERSION"; a key present overrides Git's endpoints.
	Endpoints(m *model.Mesh) map[string][]model.Endpoint
	// Changed signals (coalesced) that Endpoints may return something new.
	Changed() <-chan struct{}
	// Synced reports whether Endpoints sees the whole picture yet; until
	// then the last known endpoints are served, not a partial view.
	Synced() bool
}

// AddressSource is an EndpointSource that also discovers services'
// addresses (Kubernetes ClusterIPs), which become their VIPs when their
// CUE declares none; reconciler/kube's Discovery is one.
type AddressSource interface {
	// Addresses returns the discovered addresses of m's services by name.
	Addresses(m *model.Mesh) map[string][]string
}

// liveInput is what the served configuration was rendered from.
type liveInput struct {
	revision  string
	mesh      *model.Mesh
	endpoints map[string][]model.Endpoint
	// addresses are the discovered service addresses (render.Input).
	addresses map[string][]string
	// credentials are the gateway credential names render checked against.
	credentials map[string]bool
}

// discovered returns the run-time endpoints for m, or nil without
// discovery. Until discovery has synced (the API server is down at start),
// it returns the last known endpoints — served before, or saved in the
// state dir — rather than an empty view that would drain every service.
func (r *Reconciler) discovered(m *model.Mesh) map[string][]model.Endpoint {
	if r.opts.Discovery == nil {
		return nil
	}
	if !r.opts.Discovery.Synced() {
		return r.lastKnown().endpoints
	}
	return r.opts.Discovery.Endpoints(m)
}

// lastKnown is what discovery contributed last: to the live revision, or,
// before anything is served, to the one saved in the state dir.
func (r *Reconciler) lastKnown() discovered {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.live != nil {
		return discovered{r.live.endpoints, r.live.addresses}
	}
	return r.saved
}

// discoveredAddresses returns the run-time service addresses for m, or nil
// without an AddressSource. Until discovery has synced it returns the live
// ones, so a partial view never moves a VIP.
func (r *Reconciler) discoveredAddresses(m *model.Mesh) map[string][]string {
	as, ok := r.opts.Discovery.(AddressSource)
	if !ok {
		return nil
	}
	if !r.opts.Discovery.Synced() {
		return r.lastKnown().addresses
	}
	return as.Addresses(m)
}

// discovered is what discovery contributed to a rendered revision, kept in
// the state dir so a restart with Kubernetes unreachable renders the same.
type discovered struct {
	endpoints map[string][]model.Endpoint
	addresses map[string][]string
}

// endpointsFile and addressesFile keep the last discovered endpoints and
// service addresses in the state dir.
const (
	endpointsFile = "endpoints.json"
	addressesFile = "addresses.json"
)

// saveDiscovered writes the discovered endpoints and addresses next to the
// state file. The caller records a failure (persist.go).
func (r *Reconciler) saveDiscovered(d discovered) error {
	if r.opts.StateDir == "" || r.opts.Discovery == nil {
		return nil
	}
	b, err := json.Marshal(d.endpoints)
	if err == nil {
		err = ca.WriteFileAtomic(filepath.Join(r.opts.StateDir, endpointsFile), b, 0o644)
	}
	if err == nil {
		if b, err = json.Marshal(d.addresses); err == nil {
			err = ca.WriteFileAtomic(filepath.Join(r.opts.StateDir, addressesFile), b, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("save discovered endpoints: %w", err)
	}
	return nil
}

// loadDiscovered reads what saveDiscovered wrote; nothing when absent.
func (r *Reconciler) loadDiscovered() {
	if r.opts.StateDir == "" || r.opts.Discovery == nil {
		return
	}
	var (
		eps   map[string][]model.Endpoint
		addrs map[string][]string
	)
	for _, f := range []struct {
		name string
		into any
	}{{endpointsFile, &eps}, {addressesFile, &addrs}} {
		b, err := os.ReadFile(filepath.Join(r.opts.StateDir, f.name))
		if err != nil {
			continue
		}
		if err := json.Unmarshal(b, f.into); err != nil {
			r.log.Warn("ignoring an unreadable file in the state dir", "file", f.name, "err", err)
		}
	}
	r.mu.Lock()
	r.saved = discovered{eps, addrs}
	r.mu.Unlock()
}

// RefreshEndpoints re-renders the live revision with the endpoints
// discovery has now and applies the result, through the same render and
// apply steps as a new revision, so the change shows in the Rendered and
// Applied conditions ("(endpoints changed)", same revision). Render is pure
// and the update reuses every class whose content did not change, so the
// xDS server sends the changed ClusterLoadAssignments to the proxies that
// use them, and nothing else. It runs on the loop goroutine (Run calls it,
// debounced).
func (r *Reconciler) RefreshEndpoints() {
	r.mu.RLock()
	live := r.live
	r.mu.RUnlock()
	if live == nil {
		// Serving a state restored from disk: the mesh is not loaded yet,
		// so endpoints wait for the first good revision.
		r.log.Info("endpoints changed; waiting for a revision to load before pushing them")
		return
	}
	eps := r.discovered(live.mesh)
	addrs := r.discoveredAddresses(live.mesh)
	if sameEndpoints(eps, live.endpoints) && maps.EqualFunc(addrs, live.addresses, slices.Equal) {
		return
	}
	a := &attempt{
		start: r.opts.Now(), refresh: true, timings: map[string]float64{},
		rev: source.Revision{ID: live.revision, Short: source.ShortID(live.revision)},
		// The live mesh was loaded and checked; its credential names are
		// the ones it was rendered with.
		in: pipeline.Input{Mesh: live.mesh, Endpoints: pipeline.Fixed(eps), Addresses: fixedAddresses(addrs), RenderCache: r.renders},
	}
	if live.credentials != nil {
		a.in.Credentials = pipeline.StaticCredentials(live.credentials)
	}
	r.reconcile(context.Background(), a, []reconcileStep{
		{"render", r.render},
		{"apply", r.apply},
	})
}

// fixedAddresses is an Input.Addresses that returns addrs, or nil (no
// discovered addresses) when addrs is nil.
func fixedAddresses(addrs map[string][]string) func(*model.Mesh) map[string][]string {
	if addrs == nil {
		return nil
	}
	return func(*model.Mesh) map[string][]string { return addrs }
}

// sameEndpoints compares two endpoint maps by content.
func sameEndpoints(a, b map[string][]model.Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || !slices.EqualFunc(x, y, func(p, q model.Endpoint) bool {
			return p.Address == q.Address && p.Weight == q.Weight && maps.Equal(p.Ports, q.Ports)
		}) {
			return false
		}
	}
	return true
}
