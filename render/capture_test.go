package render

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// meshesUnderTest loads every golden case and every example mesh
// (examples/*/mesh.cue), named for messages.
func meshesUnderTest(t testing.TB) map[string]*model.Mesh {
	t.Helper()
	out := map[string]*model.Mesh{}
	for _, name := range cases(t) {
		out["testdata/"+name] = loadCase(t, name)
	}
	dirs, err := filepath.Glob(filepath.Join("..", "examples", "*", "mesh.cue"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 3 {
		t.Fatalf("found %d example meshes, want bookinfo, grpc-canary and minimal at least", len(dirs))
	}
	for _, f := range dirs {
		dir := filepath.Dir(f)
		m, diags, err := schema.Load(context.Background(), os.DirFS(dir), schema.Options{})
		if err != nil || diags.HasErrors() {
			t.Fatalf("load %s: %v\n%v", dir, err, diags)
		}
		out["examples/"+filepath.Base(dir)] = m
	}
	return out
}

// TestNoBoundListenerClash is the rule Envoy applies when it adds a
// listener (source/common/listener_manager/listener_manager_impl.cc:
// "error adding listener: NAME has duplicate address IP:PORT as existing
// listener") and the rule a pod imposes: a sidecar shares the pod's network namespace with the
// application, so it must never bind one of the application's ports. It
// walks every sidecar, ingress and egress class of every golden case and
// example: no two bound listeners on one address:port; in a sidecar, no
// bound listener on an application (target) port and the capture listeners
// on their fixed ports.
func TestNoBoundListenerClash(t *testing.T) {
	meshes := meshesUnderTest(t)
	for _, src := range slices.Sorted(maps.Keys(meshes)) {
		m := meshes[src]
		b, err := Render(Input{Mesh: m})
		if err != nil {
			t.Fatalf("%s: render:\n%v", src, err)
		}
		for _, class := range b.Classes() {
			id, err := nodeid.ParseClass(class)
			if err != nil {
				t.Fatalf("%s: %v", class, err)
			}
			if id.Kind == KindProxyless {
				continue // grpc-go binds what the application asks it to
			}
			bound := map[string]string{}
			for _, r := range b.Proxy(class).Resources(resource.ListenerType) {
				l := r.Message.(*listenerv3.Listener)
				if l.GetBindToPort() != nil && !l.GetBindToPort().GetValue() {
					continue
				}
				sa := l.GetAddress().GetSocketAddress()
				at := sa.GetAddress() + ":" + strconv.Itoa(int(sa.GetPortValue()))
				if other, dup := bound[at]; dup {
					t.Errorf("%s %s: listeners %q and %q are both bound on %s", src, class, other, l.Name, at)
				}
				bound[at] = l.Name
			}
			if id.Kind != KindSidecar {
				continue
			}
			s := m.Services[id.Service]
			for _, p := range s.Ports {
				if name, ok := bound["0.0.0.0:"+strconv.Itoa(p.Target())]; ok {
					t.Errorf("%s %s: listener %q binds the application's port %d", src, class, name, p.Target())
				}
			}
			for port, name := range map[int]string{proxyports.Outbound: VirtualOutbound, proxyports.Inbound: VirtualInbound, proxyports.Health: HealthListener, proxyports.Stats: StatsListener} {
				if got := bound["0.0.0.0:"+strconv.Itoa(port)]; got != name {
					t.Errorf("%s %s: bound on 0.0.0.0:%d: %q, want %q", src, class, port, got, name)
				}
			}
			if len(bound) != 4 {
				t.Errorf("%s %s: bound listeners %v, want only the capture, health and stats ones", src, class, bound)
			}
		}
	}
}

// TestVirtualOutboundPolicy pins where unmatched outbound traffic goes.
func TestVirtualOutboundPolicy(t *testing.T) {
	for policy, want := range map[string]string{"REGISTRY_ONLY": BlackHoleCluster, "ALLOW_ANY": PassthroughCluster} {
		m := loadCase(t, "no-vips")
		m.Mesh.OutboundTrafficPolicy = policy
		b, err := Render(Input{Mesh: m})
		if err != nil {
			t.Fatal(err)
		}
		px := b.Proxy("sidecar/default/app/v1")
		var vo *listenerv3.Listener
		for _, r := range px.Resources(resource.ListenerType) {
			if r.Name == VirtualOutbound {
				vo = r.Message.(*listenerv3.Listener)
			}
		}
		if vo == nil || !vo.GetUseOriginalDst().GetValue() {
			t.Fatalf("%s: no virtualOutbound with use_original_dst", policy)
		}
		if got := vo.GetDefaultFilterChain().GetName(); got != VirtualOutbound+"-catchall-tcp" {
			t.Errorf("%s: default chain %q", policy, got)
		}
		if !hasIn(px.Resources(resource.ClusterType), want) {
			t.Errorf("%s: class has no %s", policy, want)
		}
		raw, _ := StableJSON(vo.GetDefaultFilterChain())
		if !strings.Contains(string(raw), `"cluster": "`+want+`"`) {
			t.Errorf("%s: default chain does not go to %s:\n%s", policy, want, raw)
		}
	}
}

// TestDiscoveredAddresses: ClusterIPs from discovery are a service's VIPs
// when its CUE declares none, and declared ones win.
func TestDiscoveredAddresses(t *testing.T) {
	m := loadCase(t, "capture")
	b, err := Render(Input{Mesh: m, Addresses: map[string][]string{"users-db": {"10.96.0.40"}, "orders-db": {"10.96.0.41"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range b.Proxy("sidecar/default/app/v1").Resources(resource.ListenerType) {
		names = append(names, r.Name)
	}
	got := strings.Join(names, " ")
	want := "0.0.0.0_15021 0.0.0.0_15090 0.0.0.0_8080 10.96.0.12_5432 10.96.0.40_5432 fd00::c_5432 virtualInbound virtualOutbound"
	if got != want {
		t.Errorf("listeners:\n got %s\nwant %s", got, want)
	}
}

// TestHostsFile pins the /etc/hosts lines: one per VIP, declared ones as
// declared (both families), allocated ones from vipRange.
func TestHostsFile(t *testing.T) {
	m := loadCase(t, "capture")
	got := HostsFile(Input{Mesh: m})
	want := `# gitmesh mesh test: service VIPs
10.200.0.63 app.default.svc.cluster.local app.default app
10.96.0.12 orders-db.default.svc.cluster.local orders-db.default orders-db
fd00::c orders-db.default.svc.cluster.local orders-db.default orders-db
10.200.0.227 users-db.default.svc.cluster.local users-db.default users-db
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if got := HostsFile(Input{Mesh: m, Addresses: map[string][]string{"app": {"10.96.0.5"}}}); !strings.Contains(got, "\n10.96.0.5 app.default.svc.cluster.local app.default app\n") {
		t.Errorf("discovered address not used:\n%s", got)
	}
}

// hasIn reports whether a sorted list holds name.
func hasIn(rs []*Resource, name string) bool {
	_, ok := slices.BinarySearchFunc(rs, name, func(r *Resource, n string) int { return strings.Compare(r.Name, n) })
	return ok
}
