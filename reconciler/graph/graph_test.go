package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
	"github.com/gitmesh/gitmesh/render/bootstrap"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

func loadBookinfo(t testing.TB) *model.Mesh {
	t.Helper()
	m, diags, err := schema.Load(context.Background(), os.DirFS(filepath.Join("..", "..", "examples", "bookinfo")), schema.Options{})
	if err != nil || diags.HasErrors() {
		t.Fatalf("load bookinfo: %v\n%v", err, diags)
	}
	return m
}

// proxies is the sync state the xDS server would report: productpage and
// reviews v1 synced, reviews v3 NACKing listeners, details stale, the
// ingress gateway synced; ratings, reviews v2 and egress have no proxy.
func proxies() []apiv1.Proxy {
	at := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	synced := func(node, class string) apiv1.Proxy {
		return apiv1.Proxy{NodeID: node, Class: class, Status: apiv1.Synced,
			Types: []apiv1.TypeStatus{{TypeURL: snapshot.ListenerType, Status: apiv1.Synced}}}
	}
	nacking := apiv1.Proxy{NodeID: "sidecar/default/reviews/v3/r3", Class: "sidecar/default/reviews/v3", Status: apiv1.Nacked,
		Types: []apiv1.TypeStatus{{TypeURL: snapshot.ListenerType, Status: apiv1.Nacked,
			LastNack: &apiv1.Nack{Error: "no such filter", At: at}}}}
	stale := synced("sidecar/default/details/v1/d1", "sidecar/default/details/v1")
	stale.Status = apiv1.Stale
	return []apiv1.Proxy{
		synced("sidecar/default/productpage/v1/p1", "sidecar/default/productpage/v1"),
		synced("sidecar/default/reviews/v1/r1", "sidecar/default/reviews/v1"),
		nacking, stale,
		synced("ingress/bookinfo-gateway/g1", "ingress/bookinfo-gateway"),
	}
}

func marshal(t testing.TB, g apiv1.Graph) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // edge ids read "a->b" in the golden file
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestBookinfoGraph pins bookinfo's graph: nodes per kind with health,
// the reviews split on productpage's edge, details → egress → books-api,
// the tracing links.
func TestBookinfoGraph(t *testing.T) {
	m := loadBookinfo(t)
	g := Build(m, proxies(), Options{Revision: "abc123", TracesURL: DefaultTracesURL})
	golden.Check(t, filepath.Join("testdata", "bookinfo.json"), marshal(t, g))

	// The same input twice gives the same bytes: the layout relies on it.
	if a, b := marshal(t, g), marshal(t, Build(m, proxies(), Options{Revision: "abc123", TracesURL: DefaultTracesURL})); string(a) != string(b) {
		t.Fatal("two builds of one input differ")
	}
}

func TestNothingLoaded(t *testing.T) {
	g := Build(nil, proxies(), Options{})
	if g.Note != NotLoaded || len(g.Nodes) != 0 || g.Nodes == nil || g.Edges == nil {
		t.Errorf("graph without a model: %+v", g)
	}
}

func TestHealth(t *testing.T) {
	g := Build(loadBookinfo(t), proxies(), Options{})
	want := map[string]apiv1.Health{
		"service/productpage": apiv1.HealthSynced, "service/reviews": apiv1.HealthNacked,
		"service/details": apiv1.HealthStale, "service/ratings": apiv1.HealthNoProxy,
		"gateway/bookinfo-gateway": apiv1.HealthSynced, "gateway/egress": apiv1.HealthNoProxy,
		"external/books-api": apiv1.HealthUnmanaged,
	}
	for _, n := range g.Nodes {
		if n.Health != want[n.ID] {
			t.Errorf("%s: health %s, want %s", n.ID, n.Health, want[n.ID])
		}
		if n.TracesURL != "" {
			t.Errorf("%s: traces link %q without a template", n.ID, n.TracesURL)
		}
		if n.ID == "service/reviews" && (len(n.Nacks) != 1 || n.Nacks[0] != "sidecar/default/reviews/v3/r3: LDS: no such filter") {
			t.Errorf("reviews nacks = %q", n.Nacks)
		}
	}
}

// TestTracesLinkNamesTheTracedService: the default link searches the
// name the service's proxies report their spans under (their bootstrap's
// node.cluster), and {service} and {namespace} still work in a template.
func TestTracesLinkNamesTheTracedService(t *testing.T) {
	m := loadBookinfo(t)
	for _, n := range Build(m, nil, Options{TracesURL: DefaultTracesURL}).Nodes {
		if n.ID != "service/reviews" {
			continue
		}
		want := "http://127.0.0.1:16686/search?service=" + bootstrap.TracingService(nodeid.Class{Kind: nodeid.KindSidecar, Namespace: "default", Service: "reviews"})
		if n.TracesURL != want || want != "http://127.0.0.1:16686/search?service=reviews.default" {
			t.Errorf("reviews' traces link %q, want %q", n.TracesURL, want)
		}
	}
	if got := expandTraces("http://j/s?svc={service}&ns={namespace}", "a b", "ns"); got != "http://j/s?svc=a+b&ns=ns" {
		t.Errorf("custom template: %q", got)
	}
}

// TestTracingNeedsMeshTracing: a template alone links nothing when the
// mesh does not trace.
func TestTracingNeedsMeshTracing(t *testing.T) {
	m := loadBookinfo(t)
	m.Mesh.Tracing = nil
	for _, n := range Build(m, nil, Options{TracesURL: DefaultTracesURL}).Nodes {
		if n.TracesURL != "" {
			t.Errorf("%s: traces link %q without mesh.tracing", n.ID, n.TracesURL)
		}
	}
}

// rates is a RatesSource's answer as the Prometheus client returns it
// (the real client is tested against a real Prometheus by its package).
func rates() []apiv1.EdgeRate {
	w := time.Minute
	return []apiv1.EdgeRate{
		{Source: apiv1.Workload{Namespace: "default", Service: "productpage", Version: "v1"}, Destination: apiv1.Workload{Namespace: "default", Service: "reviews", Version: "v1"}, RequestsPerSecond: 5, ErrorsPerSecond: 0.5, Window: w},
		{Source: apiv1.Workload{Namespace: "default", Service: "productpage", Version: "v1"}, Destination: apiv1.Workload{Namespace: "default", Service: "reviews", Version: "v3"}, RequestsPerSecond: 4, Window: w},
		{Source: apiv1.Workload{Service: "productpage"}, Destination: apiv1.Workload{Service: "reviews", Version: "v3"}, RequestsPerSecond: 1, Window: w},
		// No edge in Git: not drawn.
		{Source: apiv1.Workload{Service: "ratings"}, Destination: apiv1.Workload{Service: "productpage"}, RequestsPerSecond: 7, Window: w},
		// Another namespace's reviews: not this one.
		{Source: apiv1.Workload{Namespace: "other", Service: "productpage"}, Destination: apiv1.Workload{Service: "reviews"}, RequestsPerSecond: 100, Window: w},
	}
}

func TestRates(t *testing.T) {
	g := Build(loadBookinfo(t), nil, Options{})
	AddRates(&g, rates(), nil)
	if g.Rates == nil || g.Rates.Error != "" || g.Rates.WindowSeconds != 60 {
		t.Fatalf("rates = %+v", g.Rates)
	}
	for _, e := range g.Edges {
		switch e.ID {
		case "service/productpage->service/reviews":
			if e.RequestsPerSecond == nil || *e.RequestsPerSecond != 10 || *e.ErrorsPerSecond != 0.5 {
				t.Errorf("%s: %v rps %v eps, want 10 and 0.5", e.ID, e.RequestsPerSecond, e.ErrorsPerSecond)
			}
			want := []apiv1.VersionRate{{Version: "v1", RequestsPerSecond: 5, ErrorsPerSecond: 0.5}, {Version: "v3", RequestsPerSecond: 5}}
			if len(e.Measured) != 2 || e.Measured[0] != want[0] || e.Measured[1] != want[1] {
				t.Errorf("%s: measured %+v, want %+v", e.ID, e.Measured, want)
			}
		default:
			if e.RequestsPerSecond != nil || e.ErrorsPerSecond != nil || e.Measured != nil {
				t.Errorf("%s: rates without measured traffic", e.ID)
			}
		}
	}
}

func TestRatesError(t *testing.T) {
	g := Build(loadBookinfo(t), nil, Options{})
	AddRates(&g, nil, errors.New("query prometheus: connection refused"))
	if g.Rates == nil || g.Rates.Error != "query prometheus: connection refused" || len(g.Edges) == 0 {
		t.Fatalf("rates = %+v with %d edges, want the error and the graph", g.Rates, len(g.Edges))
	}
}

// BenchmarkGraph1000 is the Go side of the console's first view of a
// 1,000-service mesh: the graph and its JSON.
func BenchmarkGraph1000(b *testing.B) {
	m, diags, err := schema.Load(context.Background(), meshgen.Generate(1000, meshgen.Options{Seed: 1}), schema.Options{Timeout: 10 * time.Minute})
	if err != nil || diags.HasErrors() {
		b.Fatalf("load: %v %v", err, diags)
	}
	var ps []apiv1.Proxy
	for _, name := range m.ServiceNames() {
		for _, v := range m.Services[name].VersionNames() {
			class := "sidecar/default/" + name + "/" + v
			ps = append(ps, apiv1.Proxy{NodeID: class + "/x", Class: class, Status: apiv1.Synced})
		}
	}
	b.ResetTimer()
	for b.Loop() {
		g := Build(m, ps, Options{Revision: "r", TracesURL: DefaultTracesURL})
		if _, err := json.Marshal(g); err != nil {
			b.Fatal(err)
		}
	}
}
