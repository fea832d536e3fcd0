package xds

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
)

// layeredModel is a class with a shared part and its own part, mutated at
// random: versions change, names come and go and move between the parts.
type layeredModel struct {
	shared, own map[string]string // name → tag
	noShared    bool
}

func (m *layeredModel) config(tb testing.TB) *ClassConfig {
	list := func(set map[string]string) []*Resource {
		var out []*Resource
		for _, n := range slices.Sorted(maps.Keys(set)) {
			out = append(out, res(tb, n, &cluster.Cluster{Name: n, AltStatName: set[n]}))
		}
		return out
	}
	if m.noShared {
		all := maps.Clone(m.own)
		maps.Copy(all, m.shared)
		return &ClassConfig{Resources: map[string][]*Resource{resource.ClusterType: list(all)}}
	}
	return &ClassConfig{
		Resources: map[string][]*Resource{resource.ClusterType: list(m.own)},
		Shared:    &ClassConfig{Resources: map[string][]*Resource{resource.ClusterType: list(m.shared)}},
	}
}

func (m *layeredModel) mutate(r *rand.Rand, round int) {
	pick := func(set map[string]string) (string, bool) {
		if len(set) == 0 {
			return "", false
		}
		keys := slices.Sorted(maps.Keys(set))
		return keys[r.IntN(len(keys))], true
	}
	for range 1 + r.IntN(3) {
		switch r.IntN(7) {
		case 0: // change a shared one
			if n, ok := pick(m.shared); ok {
				m.shared[n] = fmt.Sprint("t", round)
			}
		case 1: // change an own one
			if n, ok := pick(m.own); ok {
				m.own[n] = fmt.Sprint("t", round)
			}
		case 2: // move shared → own, same content
			if n, ok := pick(m.shared); ok {
				m.own[n] = m.shared[n]
				delete(m.shared, n)
			}
		case 3: // move own → shared
			if n, ok := pick(m.own); ok {
				m.shared[n] = m.own[n]
				delete(m.own, n)
			}
		case 4: // remove one
			if n, ok := pick(m.shared); ok {
				delete(m.shared, n)
			}
		case 5: // add one
			n, o := fmt.Sprint("n", r.IntN(30)), fmt.Sprint("o", r.IntN(5))
			m.shared[n], m.own[o] = fmt.Sprint("t", round), fmt.Sprint("t", round)
			delete(m.own, n)
			delete(m.shared, o)
		case 6:
			m.noShared = !m.noShared
		}
	}
}

// deltaClient is a delta stream that keeps what it was sent and ACKs.
type deltaClient struct {
	st    discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	p     *pump[*discovery.DeltaDiscoveryResponse]
	have  map[string]string
	named []string // nil: wildcard
}

func (c *deltaClient) drain(tb testing.TB, d time.Duration) {
	tb.Helper()
	for {
		select {
		case resp := <-c.p.ch:
			for _, r := range resp.GetResources() {
				c.have[r.GetName()] = r.GetVersion()
			}
			for _, n := range resp.GetRemovedResources() {
				if _, ok := c.have[n]; !ok {
					tb.Errorf("removal of %q, which the client does not have", n)
				}
				delete(c.have, n)
			}
			if err := c.st.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ClusterType, ResponseNonce: resp.GetNonce()}); err != nil {
				tb.Fatal(err)
			}
		case err := <-c.p.err:
			tb.Fatalf("stream ended: %v", err)
		case <-time.After(d):
			return
		}
	}
}

func (c *deltaClient) want(cfg *ClassConfig) map[string]string {
	out := map[string]string{}
	for _, r := range cfg.List(resource.ClusterType) {
		if c.named == nil || slices.Contains(c.named, r.Name) {
			out[r.Name] = r.Version
		}
	}
	return out
}

// TestDeltaLayeredStreamsFollowEveryChange drives a wildcard and a named
// delta stream through random changes of a class with a shared part and
// checks, after each, that each holds exactly what it should: base markers
// stand for the right versions, moves between the parts remove nothing,
// removals reach the client once.
func TestDeltaLayeredStreamsFollowEveryChange(t *testing.T) {
	s := newTestServer(t)
	m := &layeredModel{shared: map[string]string{}, own: map[string]string{"o1": "t0", "o2": "t0"}}
	for i := range 12 {
		m.shared[fmt.Sprint("n", i)] = "t0"
	}
	cfg := m.config(t)
	if err := s.Apply(Update{Revision: "r0", Classes: map[string]*ClassConfig{classA: cfg}}); err != nil {
		t.Fatal(err)
	}
	cli := dial(t, startServer(t, s))
	open := func(named []string) *deltaClient {
		st, err := cli.DeltaAggregatedResources(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		c := &deltaClient{st: st, p: startPump(st.Recv), have: map[string]string{}, named: named}
		req := &discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType, ResourceNamesSubscribe: named}
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
		return c
	}
	clients := []*deltaClient{open(nil), open([]string{"n1", "n3", "n5", "n20", "o1", "o3", "missing"})}
	r := rand.New(rand.NewPCG(1, 2))
	for round := 1; round <= 25; round++ {
		for _, c := range clients {
			c.drain(t, 100*time.Millisecond)
			if got, want := c.have, c.want(cfg); !maps.Equal(got, want) {
				t.Fatalf("round %d, named=%v: client has %v, want %v", round, c.named, got, want)
			}
		}
		m.mutate(r, round)
		cfg = m.config(t)
		if err := s.Apply(Update{Revision: fmt.Sprint("r", round), Classes: map[string]*ClassConfig{classA: cfg}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSharedCodecSegments checks that a delta response starting with a
// registered shared run, or holding a big resource, encodes to the same
// resources as gRPC's codec would send.
func TestSharedCodecSegments(t *testing.T) {
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	idx, _ := buildIndex(resource.ClusterType, nil, clusters(t, names, "r1")[resource.ClusterType], newWrapperPool())
	big := &discovery.Resource{Name: "big", Version: "1", Resource: anyOf(t, &cluster.Cluster{Name: "big", AltStatName: string(make([]byte, bigResource))})}
	c := newSharedCodec(1 << 30)
	c.runs = &baseRegistry{}
	c.runs.update([]baseRef{{resource.ClusterType, idx}}, nil, time.Now())
	for i, m := range []*discovery.DeltaDiscoveryResponse{
		{SystemVersionInfo: "r1", Resources: concat(idx.deltas, []*discovery.Resource{big}), TypeUrl: resource.ClusterType, Nonce: "1"},
		{SystemVersionInfo: "r1", Resources: concat(idx.deltas[:19], idx.deltas[19:]), TypeUrl: resource.ClusterType, Nonce: "2", RemovedResources: []string{"x"}},
		{SystemVersionInfo: "r2", Resources: []*discovery.Resource{idx.deltas[3], big}, TypeUrl: resource.ClusterType, Nonce: "3"},
	} {
		data, err := c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := &discovery.DeltaDiscoveryResponse{}
		if err := proto.Unmarshal(data.Materialize(), got); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		byName := func(a, b *discovery.Resource) int { return cmpName(a.GetName(), b.GetName()) }
		slices.SortFunc(got.Resources, byName)
		want := proto.Clone(m).(*discovery.DeltaDiscoveryResponse)
		slices.SortFunc(want.Resources, byName)
		if !proto.Equal(got, want) {
			t.Fatalf("message %d decodes to something else", i)
		}
	}
	if len(c.bodies) != 2 {
		t.Fatalf("%d cached bodies, want 2 (the run and the big resource)", len(c.bodies))
	}
}

// TestSotwLayeredWildcard checks that a SotW wildcard stream of a class with
// a shared part receives the whole class, shared part included, after each
// change.
func TestSotwLayeredWildcard(t *testing.T) {
	s := newTestServer(t)
	m := &layeredModel{shared: map[string]string{}, own: map[string]string{"o1": "t0"}}
	for i := range 10 {
		m.shared[fmt.Sprint("n", i)] = "t0"
	}
	st, err := dial(t, startServer(t, s)).StreamAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p := startPump(st.Recv)
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 8 {
		cfg := m.config(t)
		if err := s.Apply(Update{Revision: fmt.Sprint("r", round), Classes: map[string]*ClassConfig{classA: cfg}}); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			if err := st.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType}); err != nil {
				t.Fatal(err)
			}
		}
		resp := p.next(t, wait)
		var want []string
		for _, r := range cfg.List(resource.ClusterType) {
			want = append(want, r.Name)
		}
		if got := slices.Sorted(slices.Values(anyNames(t, resp.GetResources()))); !slices.Equal(got, want) {
			t.Fatalf("round %d: got %v, want %v", round, got, want)
		}
		if err := st.Send(ack(resp)); err != nil {
			t.Fatal(err)
		}
		for maps.Equal(cfgNames(m.config(t)), cfgNames(cfg)) { // a change the stream must see
			m.mutate(r, round+1)
		}
	}
}

func cfgNames(c *ClassConfig) map[string]string {
	out := map[string]string{}
	for _, r := range c.List(resource.ClusterType) {
		out[r.Name] = r.Version
	}
	return out
}

// TestDeltaLayeredReconnect has a wildcard stream reconnect to a layered
// class with versions it kept: only what it lacks or has stale comes, and
// what no longer exists is removed.
func TestDeltaLayeredReconnect(t *testing.T) {
	s := newTestServer(t)
	m := &layeredModel{shared: map[string]string{"n1": "t0", "n2": "t0", "n3": "t0"}, own: map[string]string{"o1": "t0"}}
	cfg := m.config(t)
	if err := s.Apply(Update{Revision: "r1", Classes: map[string]*ClassConfig{classA: cfg}}); err != nil {
		t.Fatal(err)
	}
	st, err := dial(t, startServer(t, s)).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	known := cfgNames(cfg)
	known["n2"] = "old"
	known["gone"] = "x"
	c := &deltaClient{st: st, p: startPump(st.Recv), have: maps.Clone(known)}
	if err := st.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: nodeA}, TypeUrl: resource.ClusterType,
		ResourceNamesSubscribe: []string{"*"}, InitialResourceVersions: known}); err != nil {
		t.Fatal(err)
	}
	resp := <-c.p.ch
	if got := names(resp.GetResources()); !slices.Equal(got, []string{"n2"}) || !slices.Equal(resp.GetRemovedResources(), []string{"gone"}) {
		t.Fatalf("reconnect got %v removed %v, want [n2] removed [gone]", got, resp.GetRemovedResources())
	}
	c.p.ch <- resp
	c.drain(t, 100*time.Millisecond)
	m.shared["n1"] = "t1"
	delete(m.shared, "n3")
	cfg = m.config(t)
	if err := s.Apply(Update{Revision: "r2", Classes: map[string]*ClassConfig{classA: cfg}}); err != nil {
		t.Fatal(err)
	}
	c.drain(t, 200*time.Millisecond)
	if !maps.Equal(c.have, cfgNames(cfg)) {
		t.Fatalf("client has %v, want %v", c.have, cfgNames(cfg))
	}
}

// TestSizesWithSharedRuns checks that response sizes computed with a
// shared part's cached size equal proto.Size.
func TestSizesWithSharedRuns(t *testing.T) {
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	idx, _ := buildIndex(resource.ClusterType, nil, clusters(t, names, "r1")[resource.ClusterType], newWrapperPool())
	r := &baseRegistry{}
	r.update([]baseRef{{resource.ClusterType, idx}}, nil, time.Now())
	extra := &discovery.Resource{Name: "x", Version: "1", Resource: idx.anys[0]}
	for range 2 { // computed, then cached
		d := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "r1", Resources: concat(idx.deltas, []*discovery.Resource{extra}),
			TypeUrl: resource.ClusterType, Nonce: "7", RemovedResources: []string{"gone"}}
		if got, want := r.deltaSize(d), proto.Size(d); got != want {
			t.Fatalf("delta size %d, want %d", got, want)
		}
		s := &discovery.DiscoveryResponse{VersionInfo: "v", Resources: concat(idx.anys, idx.anys[:1]), TypeUrl: resource.ClusterType, Nonce: "8"}
		if got, want := r.sotwSize(s), proto.Size(s); got != want {
			t.Fatalf("sotw size %d, want %d", got, want)
		}
	}
}
