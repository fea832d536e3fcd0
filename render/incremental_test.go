package render

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// TestIncrementalMatchesFull renders a sequence of meshes through one
// Cache, as the reconciler does with revisions, and compares every result
// with a full render of the same input, byte for byte per resource: one
// weight edit, the same mesh again, meshes of other seeds and shapes over
// the same service names (so some services are unchanged and others not),
// discovered endpoints and addresses, added services, a render that fails
// and the one after it, then every golden case and example, twice, each
// after a different predecessor.
func TestIncrementalMatchesFull(t *testing.T) {
	c := NewCache()
	type step struct {
		name string
		in   Input
	}
	var steps []step
	gen := func(name string, n int, opt meshgen.Options, edit ...int) {
		fsys := meshgen.Generate(n, opt)
		for _, i := range edit {
			fsys = editWeight(t, fsys, i)
		}
		steps = append(steps, step{name, Input{Mesh: loadFS(t, fsys)}})
	}
	gen("unscoped", 40, meshgen.Options{Seed: 1, Unscoped: true})
	gen("unscoped again", 40, meshgen.Options{Seed: 1, Unscoped: true})
	gen("one weight edit", 40, meshgen.Options{Seed: 1, Unscoped: true}, 7)
	gen("two weight edits", 40, meshgen.Options{Seed: 1, Unscoped: true}, 7, 8)
	gen("other seed", 40, meshgen.Options{Seed: 2, Unscoped: true})
	gen("scoped", 40, meshgen.Options{Seed: 2})
	gen("grpc", 40, meshgen.Options{Seed: 2, Protocol: "grpc"})
	gen("more services", 47, meshgen.Options{Seed: 2, Protocol: "grpc"})
	m := loadFS(t, meshgen.Generate(47, meshgen.Options{Seed: 2, Protocol: "grpc"}))
	s := m.Services[meshgen.ServiceName(3)]
	v := s.VersionNames()[0]
	steps = append(steps,
		step{"discovered endpoints", Input{Mesh: m, Endpoints: map[string][]model.Endpoint{
			s.Name + "/" + v: {{Address: "10.9.0.1"}, {Address: "10.9.0.2", Weight: 3}},
		}}},
		step{"discovered addresses", Input{Mesh: m, Addresses: map[string][]string{s.Name: {"10.96.7.7"}}}},
		step{"neither", Input{Mesh: m}},
	)
	// An edit of what a service's inbound side reads of others while the
	// service itself stays: the identity of a service its authorization
	// names, an extension's config.
	steps = append(steps, step{"authz", Input{Mesh: loadCase(t, "authz")}})
	authz := loadCase(t, "authz")
	authz.Services["frontend"].ServiceAccount += "-renamed"
	steps = append(steps, step{"authz source identity", Input{Mesh: authz}})
	steps = append(steps, step{"wasm", Input{Mesh: loadCase(t, "wasm")}})
	wasm := loadCase(t, "wasm")
	for _, e := range wasm.Extensions {
		e.Config += " "
	}
	steps = append(steps, step{"wasm config", Input{Mesh: wasm}})
	// A route to another service, which changes while the router does
	// not: its traffic policy (the route's hash policy), then its ports.
	routed := func(backend string) Input {
		return Input{Mesh: loadFS(t, fstest.MapFS{"mesh.cue": {Data: []byte(`package mesh
mesh: name: "test"
services: frontend: {
	ports: [{name: "http", number: 8080}]
	versions: v1: endpoints: [{address: "10.0.0.1"}]
	routes: [{name: "api", to: [{service: "backend", weight: 100}]}]
	dependsOn: ["backend"]
}
services: backend: {
	versions: v1: endpoints: [{address: "10.0.1.1"}]
	dependsOn: ["frontend"]
` + backend + `
}
`)}})}
	}
	steps = append(steps,
		step{"route to another service", routed(`ports: [{name: "http", number: 8080}]`)},
		step{"its traffic policy", routed(`ports: [{name: "http", number: 8080}]
	trafficPolicy: {loadBalancer: "RING_HASH", hashHeader: "x-user"}`)},
		step{"its ports", routed(`ports: [{name: "http", number: 9090}, {name: "http2", number: 8080, protocol: "http2"}]
	trafficPolicy: {loadBalancer: "RING_HASH", hashHeader: "x-user"}`)},
	)
	// The mesh block alone: identities, host names, tracing.
	steps = append(steps, step{"bookinfo", Input{Mesh: loadCase(t, "bookinfo")}})
	td := loadCase(t, "bookinfo")
	td.Mesh.TrustDomain = "other.example"
	steps = append(steps, step{"bookinfo trust domain", Input{Mesh: td}})
	// A render that fails (a gateway credential that is not served) must
	// fail alike, and leave the cache as it was for the next one.
	steps = append(steps, step{"failing", Input{Mesh: loadCase(t, "ingress"), Credentials: map[string]bool{}}})
	meshes := meshesUnderTest(t)
	names := make([]string, 0, len(meshes))
	for name := range meshes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		steps = append(steps, step{name, Input{Mesh: meshes[name]}})
	}
	slices.Reverse(names)
	for _, name := range names {
		steps = append(steps, step{name + " (again)", Input{Mesh: meshes[name]}})
	}

	reusedAny := false
	for i, st := range steps {
		want, werr := Render(st.in)
		got, gerr := c.Render(st.in)
		what := fmt.Sprintf("step %d (%s)", i, st.name)
		if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
			t.Fatalf("%s: full render: %v\nincremental: %v", what, werr, gerr)
		}
		if (st.name == "failing") != (werr != nil) {
			t.Fatalf("%s: render error %v", what, werr)
		}
		if werr != nil {
			continue
		}
		sameBundle(t, what, want, got)
		stats := c.Stats()
		reusedAny = reusedAny || stats.Reused > 0
		if st.name == "unscoped again" && stats.Built != 0 {
			t.Errorf("%s: built %d cacheable resources, want all reused", what, stats.Built)
		}
	}
	if !reusedAny {
		t.Fatal("the cache reused nothing: the test compares full renders with full renders")
	}
}

// TestIncrementalEditRebuildsOnlyTheService checks the cache does the work
// it is for: after one service's endpoints change, only that service's
// clusters and assignments are built again.
func TestIncrementalEditRebuildsOnlyTheService(t *testing.T) {
	m := loadFS(t, meshgen.Generate(30, meshgen.Options{Seed: 1, Unscoped: true}))
	c := NewCache()
	if _, err := c.Render(Input{Mesh: m}); err != nil {
		t.Fatal(err)
	}
	first := c.Stats()
	s := m.Services[meshgen.ServiceName(5)]
	v := s.VersionNames()[0]
	in := Input{Mesh: m, Endpoints: map[string][]model.Endpoint{s.Name + "/" + v: {{Address: "10.9.0.1"}}}}
	got, err := c.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	sameBundle(t, "endpoints edit", want, got)
	st := c.Stats()
	// One cluster per port for all versions and one per port and
	// version, the service's virtualInbound, its virtual hosts (their
	// fingerprints cover the whole service) and the route configurations
	// that hold them (one per port: the mesh is unscoped).
	perService := len(s.Ports)*(1+len(s.VersionNames())) + 1 + 2*len(s.Ports)
	if st.Built == 0 || st.Built > perService {
		t.Errorf("after one service's endpoints changed: built %d, want 1..%d (first render built %d)", st.Built, perService, first.Built)
	}
	if st.Reused == 0 {
		t.Errorf("reused nothing")
	}
}

// sameBundle fails unless got serves exactly what want serves: the same
// classes, kinds, content versions, resources (name, version, bytes),
// layers and secrets plan.
func sameBundle(t *testing.T, what string, want, got *Bundle) {
	t.Helper()
	if !slices.Equal(want.Classes(), got.Classes()) {
		t.Fatalf("%s: classes differ:\nwant %v\ngot  %v", what, want.Classes(), got.Classes())
	}
	wu, gu := want.Update("r"), got.Update("r")
	for _, class := range want.Classes() {
		if wk, gk := want.Proxy(class).Kind, got.Proxy(class).Kind; wk != gk {
			t.Errorf("%s: %s: kind %q, want %q", what, class, gk, wk)
		}
		sameConfig(t, what+": "+class, wu.Classes[class], gu.Classes[class])
	}
	if !reflect.DeepEqual(want.Secrets(), got.Secrets()) {
		t.Errorf("%s: secrets plans differ", what)
	}
}

func sameConfig(t *testing.T, what string, want, got *snapshot.ClassConfig) {
	t.Helper()
	if (want == nil) != (got == nil) {
		t.Fatalf("%s: config %v, want %v", what, got, want)
	}
	if want == nil {
		return
	}
	if want.Version != got.Version {
		t.Errorf("%s: version %q, want %q", what, got.Version, want.Version)
	}
	for _, typ := range snapshot.Rendered() {
		w, g := want.Resources[typ], got.Resources[typ]
		if len(w) != len(g) {
			t.Errorf("%s: %d %s, want %d", what, len(g), snapshot.Noun(typ), len(w))
			continue
		}
		for i := range w {
			if w[i].Name != g[i].Name || w[i].Version != g[i].Version || w[i].Any.TypeUrl != g[i].Any.TypeUrl || !bytes.Equal(w[i].Any.Value, g[i].Any.Value) {
				t.Errorf("%s: %s %q (version %s) differs from the full render's %q (version %s)", what, snapshot.Noun(typ), g[i].Name, g[i].Version, w[i].Name, w[i].Version)
			}
		}
	}
	if (want.Shared == nil) != (got.Shared == nil) {
		t.Errorf("%s: shared layer %v, want %v", what, got.Shared != nil, want.Shared != nil)
		return
	}
	if want.Shared != nil {
		sameConfig(t, what+" (layer)", want.Shared, got.Shared)
	}
}

func loadFS(t *testing.T, fsys fstest.MapFS) *model.Mesh {
	t.Helper()
	m, diags, err := schema.Load(context.Background(), fsys, schema.Options{Timeout: time.Minute})
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	return m
}

// weightsRE is the v1/v2 split meshgen writes (cmd/meshbench edits it
// the same way).
var weightsRE = regexp.MustCompile(`to: \[\{version: "v1", weight: (\d+)\}, \{version: "v2", weight: (\d+)\}\]`)

// editWeight moves 10 points of service i's split between v1 and v2.
func editWeight(t testing.TB, fsys fstest.MapFS, i int) fstest.MapFS {
	t.Helper()
	path := meshgen.ServiceFile(i)
	f := fsys[path]
	sm := weightsRE.FindSubmatch(f.Data)
	if sm == nil {
		t.Fatalf("no v1/v2 split in %s", path)
	}
	w1, _ := strconv.Atoi(string(sm[1]))
	w2, _ := strconv.Atoi(string(sm[2]))
	if w2 >= 50 {
		w1, w2 = w1+10, w2-10
	} else {
		w1, w2 = w1-10, w2+10
	}
	out := fstest.MapFS{}
	for k, v := range fsys {
		out[k] = v
	}
	repl := fmt.Sprintf(`to: [{version: "v1", weight: %d}, {version: "v2", weight: %d}]`, w1, w2)
	out[path] = &fstest.MapFile{Data: weightsRE.ReplaceAllLiteral(f.Data, []byte(repl))}
	return out
}

// FuzzIncrementalRender renders two random meshes (internal/meshgen,
// shaped by the fuzzer's bytes: the same service names with other seeds,
// sizes and shapes, so some services are unchanged and others not) in a
// row through one Cache, with discovered endpoints for one service in
// between, and wants every incremental result identical to a full render.
// The seeds run with every `go test`; explore with
//
//	go test -fuzz FuzzIncrementalRender -fuzztime 60s ./render
func FuzzIncrementalRender(f *testing.F) {
	f.Add(int64(1), int64(1), uint8(9), uint8(1), uint8(0), uint8(1), uint8(3))
	f.Add(int64(1), int64(2), uint8(9), uint8(1), uint8(1), uint8(1), uint8(3))
	f.Add(int64(7), int64(7), uint8(8), uint8(1), uint8(3), uint8(5), uint8(2))
	f.Add(int64(42), int64(43), uint8(5), uint8(2), uint8(4), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, seedA, seedB int64, size, grow, shapeA, shapeB, callees uint8) {
		gen := func(seed int64, n int, shape uint8) *model.Mesh {
			opt := meshgen.Options{
				Seed:     seed,
				Unscoped: shape&1 == 1,
				Protocol: [...]string{"http", "http2", "grpc"}[int(shape>>1)%3],
				Callees:  int(callees % 6),
			}
			m, diags, err := schema.Load(context.Background(), meshgen.Generate(n, opt), schema.Options{})
			if err != nil || diags.HasErrors() {
				t.Fatalf("meshgen(%d, %+v) does not load: %v\n%v", n, opt, err, diags)
			}
			return m
		}
		n := 1 + int(size%10)
		a, b := gen(seedA, n, shapeA), gen(seedB, n+int(grow%3), shapeB)
		var eps map[string][]model.Endpoint
		if s := b.Services[meshgen.ServiceName(0)]; s != nil && len(s.Versions) > 0 {
			eps = map[string][]model.Endpoint{s.Name + "/" + s.VersionNames()[0]: {{Address: "10.9.0.1"}}}
		}
		c := NewCache()
		for i, in := range []Input{{Mesh: a}, {Mesh: b}, {Mesh: b, Endpoints: eps}, {Mesh: a}} {
			want, werr := Render(in)
			got, gerr := c.Render(in)
			if (werr == nil) != (gerr == nil) || (werr != nil && werr.Error() != gerr.Error()) {
				t.Fatalf("render %d: full: %v\nincremental: %v", i, werr, gerr)
			}
			if werr == nil {
				sameBundle(t, fmt.Sprintf("render %d", i), want, got)
			}
		}
	})
}
