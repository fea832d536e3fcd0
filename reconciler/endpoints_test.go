package reconciler

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/schema/model"
)

// staticDiscovery is an EndpointSource the test sets by hand. It stands
// for the Kubernetes discovery, which has its own tests against a real API
// server (reconciler/kube, cmd/gitmesh TestKubernetesEndpoints).
type staticDiscovery struct {
	mu      sync.Mutex
	eps     map[string][]model.Endpoint
	synced  bool
	changed chan struct{}
}

func (d *staticDiscovery) set(eps map[string][]model.Endpoint, synced bool) {
	d.mu.Lock()
	d.eps, d.synced = eps, synced
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

func (d *staticDiscovery) Endpoints(*model.Mesh) map[string][]model.Endpoint {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eps
}
func (d *staticDiscovery) Changed() <-chan struct{} { return d.changed }
func (d *staticDiscovery) Synced() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.synced
}

func newDiscoveryHarness(t *testing.T, disc *staticDiscovery, stateDir string) *harness {
	t.Helper()
	// One mesh directory per state dir: a second harness on the same state
	// dir is a restart of the same source (the state dir refuses to restore
	// another source's state).
	h := &harness{t: t, dir: stateDir + "-mesh", stateDir: stateDir}
	if _, err := os.Stat(h.dir); err != nil {
		copyDir(t, filepath.Join("..", "examples", "minimal"), h.dir)
		writeOther(t, h.dir)
	}
	src, err := source.NewDir(source.DirOptions{Dir: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	if h.srv, err = xds.New(xds.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	h.rec, err = New(Options{Source: src, Server: h.srv, StateDir: stateDir, Logger: quiet, Interval: time.Hour, Discovery: disc})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// cla returns the served ClusterLoadAssignment of hello v1 as text.
func cla(t *testing.T, h *harness, class string) string {
	t.Helper()
	for _, r := range h.rec.served.Classes[class].List(resource.EndpointType) {
		if strings.Contains(r.Name, "|v1|hello") {
			return string(r.Any.Value)
		}
	}
	t.Fatalf("%s has no hello v1 endpoints", class)
	return ""
}

// versionsOf maps resource name → version for one type of a class.
func versionsOf(h *harness, class, typeURL string) map[string]string {
	out := map[string]string{}
	for _, r := range h.rec.served.Classes[class].List(typeURL) {
		out[r.Name] = r.Version
	}
	return out
}

func TestDiscoveredEndpointsPushOnlyEDS(t *testing.T) {
	disc := &staticDiscovery{changed: make(chan struct{}, 1), synced: true,
		eps: map[string][]model.Endpoint{"hello/v1": {{Address: "10.0.0.1"}}, "hello/v2": {{Address: "10.0.0.2"}}}}
	stateDir := t.TempDir()
	h := newDiscoveryHarness(t, disc, stateDir)
	h.rec.ReconcileOnce(context.Background())
	const caller = "sidecar/default/hello/v1"
	if !strings.Contains(cla(t, h, caller), "10.0.0.1") {
		t.Fatal("the first render did not use the discovered endpoints")
	}
	before := h.rec.served
	lds, cds := versionsOf(h, caller, resource.ListenerType), versionsOf(h, caller, resource.ClusterType)

	// New endpoints: no revision, only EDS changes, only where it is used.
	disc.set(map[string][]model.Endpoint{"hello/v1": {{Address: "10.0.0.1"}, {Address: "10.0.0.9"}}, "hello/v2": {{Address: "10.0.0.2"}}}, true)
	h.rec.RefreshEndpoints()
	if !strings.Contains(cla(t, h, caller), "10.0.0.9") {
		t.Fatal("the new endpoint was not applied")
	}
	if got := versionsOf(h, caller, resource.ListenerType); !mapsEqual(got, lds) {
		t.Error("listeners changed for an endpoint change")
	}
	if got := versionsOf(h, caller, resource.ClusterType); !mapsEqual(got, cds) {
		t.Error("clusters changed for an endpoint change")
	}
	if before.Classes["sidecar/default/other/v1"] != h.rec.served.Classes["sidecar/default/other/v1"] {
		t.Error("a class that does not call hello got a new config")
	}
	if h.srv.Revision() != before.Revision {
		t.Errorf("revision moved to %s for an endpoint change", h.srv.Revision())
	}

	// Kubernetes unreachable at a restart: the saved endpoints serve until
	// discovery syncs, instead of an empty view draining hello.
	disc2 := &staticDiscovery{changed: make(chan struct{}, 1), synced: false}
	h2 := newDiscoveryHarness(t, disc2, stateDir)
	if err := h2.rec.Restore(); err != nil {
		t.Fatal(err)
	}
	h2.rec.ReconcileOnce(context.Background())
	if got := h2.rec.Status().LastAttempt; got == nil || got.Result != "applied" {
		t.Fatalf("reconcile after restart: %+v", got)
	}
	if !strings.Contains(cla(t, h2, caller), "10.0.0.9") {
		t.Error("after a restart with discovery not synced, the last known endpoints are not served")
	}
	// Still unsynced: churn signals change nothing.
	disc2.set(nil, false)
	h2.rec.RefreshEndpoints()
	if !strings.Contains(cla(t, h2, caller), "10.0.0.9") {
		t.Error("an unsynced discovery drained the endpoints")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestEndpointRefreshUpdatesConditions: an endpoint change goes through the
// render and apply steps, so the conditions say what is served now: the
// same revision, with new endpoints.
func TestEndpointRefreshUpdatesConditions(t *testing.T) {
	disc := &staticDiscovery{changed: make(chan struct{}, 1), synced: true,
		eps: map[string][]model.Endpoint{"hello/v1": {{Address: "10.0.0.1"}}}}
	h := newDiscoveryHarness(t, disc, t.TempDir())
	h.rec.ReconcileOnce(context.Background())
	st := h.rec.Status()
	if !st.Ready {
		t.Fatalf("not ready after the first revision: %+v", st.Conditions)
	}
	short := st.Live.Short
	msg := func(st apiv1.Status, typ string) string {
		for _, c := range st.Conditions {
			if c.Type == typ {
				return string(c.Status) + "/" + c.Reason + ": " + c.Message
			}
		}
		return "missing"
	}
	if got, want := msg(st, ConditionApplied), "True/Succeeded: serving "+short; got != want {
		t.Errorf("Applied after the revision: %q, want %q", got, want)
	}
	applied := 0
	h.rec.opts.OnApplied = func() { applied++ }

	disc.set(map[string][]model.Endpoint{"hello/v1": {{Address: "10.0.0.1"}, {Address: "10.0.0.9"}}}, true)
	h.rec.RefreshEndpoints()
	st = h.rec.Status()
	if got, want := msg(st, ConditionApplied), "True/Succeeded: serving "+short+" (endpoints changed)"; got != want {
		t.Errorf("Applied after the refresh: %q, want %q", got, want)
	}
	if got := msg(st, ConditionRendered); !strings.HasSuffix(got, " of "+short+" (endpoints changed)") {
		t.Errorf("Rendered after the refresh: %q", got)
	}
	if !st.Ready || st.Live.Short != short || applied != 1 {
		t.Errorf("after the refresh: ready=%v live=%s OnApplied×%d; want ready, %s, 1", st.Ready, st.Live.Short, applied, short)
	}

	// Endpoints render refuses keep the previous ones serving, and say so.
	disc.set(map[string][]model.Endpoint{"hello/v1": {{Address: "10.0.0.1", Ports: map[string]int{"http": 70000}}}}, true)
	h.rec.RefreshEndpoints()
	st = h.rec.Status()
	got := msg(st, ConditionRendered)
	if !strings.HasPrefix(got, "False/RenderFailed: ") || !strings.HasSuffix(got, "(endpoints changed)") || st.Ready {
		t.Errorf("after refused endpoints: Rendered %q, ready=%v; want False/RenderFailed and not ready", got, st.Ready)
	}
	if !strings.Contains(cla(t, h, "sidecar/default/hello/v1"), "10.0.0.9") || applied != 1 {
		t.Error("refused endpoints replaced the served ones")
	}
}

// addressDiscovery also discovers service addresses (ClusterIPs), as
// reconciler/kube's Discovery does.
type addressDiscovery struct {
	staticDiscovery
	addrs map[string][]string
}

func (d *addressDiscovery) Addresses(*model.Mesh) map[string][]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addrs
}

// TestDiscoveredAddresses: ClusterIPs are the VIPs serve renders (a TCP
// service's VIP_PORT listener), and a ClusterIP change alone re-renders
// the live revision.
func TestDiscoveredAddresses(t *testing.T) {
	disc := &addressDiscovery{staticDiscovery: staticDiscovery{changed: make(chan struct{}, 1), synced: true},
		addrs: map[string][]string{"db": {"10.96.0.40"}}}
	stateDir := t.TempDir()
	dir := stateDir + "-mesh"
	copyDir(t, filepath.Join("..", "examples", "minimal"), dir)
	writeOther(t, dir)
	err := os.WriteFile(filepath.Join(dir, "db.cue"), []byte(`package mesh

services: db: {
	ports: [{name: "pg", number: 5432, protocol: "tcp"}]
	versions: v1: endpoints: [{address: "127.0.0.1"}]
	dependsOn: []
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := newDiscoveryHarness(t, &disc.staticDiscovery, stateDir)
	// The harness wires a plain EndpointSource; serve wires the Discovery,
	// which is also an AddressSource.
	h.rec.opts.Discovery = disc
	h.rec.ReconcileOnce(context.Background())
	const caller = "sidecar/default/hello/v1"
	if _, ok := versionsOf(h, caller, resource.ListenerType)["10.96.0.40_5432"]; !ok {
		t.Fatalf("no listener on the discovered ClusterIP: %v", versionsOf(h, caller, resource.ListenerType))
	}
	disc.mu.Lock()
	disc.addrs = map[string][]string{"db": {"10.96.0.41"}}
	disc.mu.Unlock()
	h.rec.RefreshEndpoints()
	got := versionsOf(h, caller, resource.ListenerType)
	if _, ok := got["10.96.0.41_5432"]; !ok {
		t.Errorf("a new ClusterIP was not applied: %v", got)
	}
	if _, ok := got["10.96.0.40_5432"]; ok {
		t.Errorf("the old ClusterIP's listener stayed: %v", got)
	}

	// A restart while Kubernetes is unreachable (discovery not synced)
	// renders the saved ClusterIP, not an allocated VIP that no
	// application resolves.
	down := &addressDiscovery{staticDiscovery: staticDiscovery{changed: make(chan struct{}, 1)}}
	h2 := newDiscoveryHarness(t, &down.staticDiscovery, stateDir)
	h2.rec.opts.Discovery = down
	if err := h2.rec.Restore(); err != nil {
		t.Fatal(err)
	}
	h2.rec.ReconcileOnce(context.Background())
	got = versionsOf(h2, caller, resource.ListenerType)
	if _, ok := got["10.96.0.41_5432"]; !ok {
		t.Errorf("after a restart without Kubernetes the saved ClusterIP is not served: %v", got)
	}
}
