package xds

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// loadConfig describes one load scenario: services × classes, each class
// (one per service) receiving deps services' clusters and endpoints, or all
// of them when deps is 0 (unscoped), served to streams ADS streams.
type loadConfig struct {
	services, streams, deps int
	pad                     int // bytes of padding per cluster, to reach a target size per proxy
	delta                   bool
	conns                   int
}

type loadResult struct {
	converge      time.Duration // all streams have CDS and EDS
	pushP50       time.Duration // one-service change, per affected stream
	pushP99       time.Duration
	affected      int
	bytesPerProxy int
	heapMB        float64
	rssMB         float64
	peakMB        float64
	apply         time.Duration // Apply of the one-service change
}

func svcName(i int) string { return fmt.Sprintf("svc%04d", i) }

// loadResources builds each service's cluster and endpoints once; classes
// share the pointers, as render shares them.
func loadResources(tb testing.TB, cfg loadConfig, gen int) (cl, eps []*Resource) {
	pad := strings.Repeat("x", cfg.pad)
	for i := range cfg.services {
		n := svcName(i)
		cl = append(cl, res(tb, n, &cluster.Cluster{Name: n, AltStatName: pad,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}}))
		eps = append(eps, res(tb, n, &endpoint.ClusterLoadAssignment{ClusterName: n, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LoadBalancingWeight: wrapperspb.UInt32(uint32(1 + gen)),
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
					Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(8000 + i%1000)}}}}}}}},
		}}}))
	}
	return cl, eps
}

func loadUpdate(cfg loadConfig, rev string, cl, eps []*Resource) Update {
	u := Update{Revision: rev, Classes: map[string]*ClassConfig{}}
	for i := range cfg.services {
		var c, e []*Resource
		if cfg.deps == 0 {
			c, e = cl, eps
		} else {
			idx := make([]int, 0, cfg.deps)
			for d := range cfg.deps {
				idx = append(idx, (i+d*7)%cfg.services)
			}
			slices.Sort(idx)
			idx = slices.Compact(idx)
			for _, k := range idx {
				c, e = append(c, cl[k]), append(e, eps[k])
			}
		}
		u.Classes["sidecar/default/"+svcName(i)+"/v1"] = &ClassConfig{Resources: map[string][]*Resource{
			resource.ClusterType: c, resource.EndpointType: e}}
	}
	return u
}

type loadEvent struct {
	stream int
	at     time.Time
	n      int
	size   int
}

// runLoad starts the streams, waits for full convergence, then changes one
// service's endpoints and measures how long each affected stream takes to
// receive it.
func runLoad(tb testing.TB, cfg loadConfig) loadResult {
	s := newTestServer(tb)
	cl, eps := loadResources(tb, cfg, 0)
	if err := s.Apply(loadUpdate(cfg, "r1", cl, eps)); err != nil {
		tb.Fatal(err)
	}
	addr := startServer(tb, s)
	events := startLoadClient(tb, addr, cfg)
	start := time.Now()
	// Convergence: two responses (CDS, EDS) per stream.
	got := make([]int, cfg.streams)
	bytes := 0
	for done := 0; done < cfg.streams; {
		ev := <-events
		got[ev.stream]++
		if ev.stream == 0 {
			bytes += ev.size
		}
		if got[ev.stream] == 2 {
			done++
		}
	}
	r := loadResult{converge: time.Since(start), bytesPerProxy: bytes}
	runtime.GC()
	runtime.GC() // a second cycle empties sync.Pool victim caches (gRPC's buffers)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMB = float64(ms.HeapInuse) / (1 << 20)
	r.rssMB = rssMB()
	r.peakMB = peakRSSMB()
	time.Sleep(100 * time.Millisecond) // let ACKs land

	// One service's endpoints change.
	_, eps2 := loadResources(tb, loadConfig{services: cfg.services, pad: 0}, 1)
	eps = slices.Clone(eps)
	eps[0] = eps2[0]
	u := loadUpdate(cfg, "r2", cl, eps)
	for i := range cfg.streams {
		if slices.Contains(u.Classes["sidecar/default/"+svcName(i%cfg.services)+"/v1"].Resources[resource.EndpointType], eps[0]) {
			r.affected++
		}
	}
	applyStart := time.Now()
	if err := s.Apply(u); err != nil {
		tb.Fatal(err)
	}
	r.apply = time.Since(applyStart)
	var lat []time.Duration
	timeout := time.After(30 * time.Second)
	for len(lat) < r.affected {
		select {
		case ev := <-events:
			if cfg.delta && ev.n != 1 {
				tb.Fatalf("delta push carried %d resources, want 1", ev.n)
			}
			lat = append(lat, ev.at.Sub(applyStart))
		case <-timeout:
			tb.Fatalf("only %d of %d affected streams got the change", len(lat), r.affected)
		}
	}
	slices.Sort(lat)
	r.pushP50, r.pushP99 = lat[len(lat)/2], lat[len(lat)*99/100]
	select {
	case ev := <-events:
		tb.Fatalf("unaffected stream %d got a push", ev.stream)
	case <-time.After(200 * time.Millisecond):
	}
	return r
}

// startLoadClient runs the streams in a child process (see TestMain) and
// turns its report lines into events.
func startLoadClient(tb testing.TB, addr string, cfg loadConfig) <-chan loadEvent {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XDS_LOAD_CLIENT_ADDR="+addr,
		"XDS_LOAD_CLIENT_STREAMS="+strconv.Itoa(cfg.streams),
		"XDS_LOAD_CLIENT_SERVICES="+strconv.Itoa(cfg.services),
		"XDS_LOAD_CLIENT_CONNS="+strconv.Itoa(cfg.conns),
		"XDS_LOAD_CLIENT_DELTA="+map[bool]string{true: "1", false: "0"}[cfg.delta])
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cancel(); cmd.Wait() })
	events := make(chan loadEvent, cfg.streams*4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev loadEvent
			var nanos int64
			if _, err := fmt.Sscan(sc.Text(), &ev.stream, &ev.n, &ev.size, &nanos); err != nil {
				continue
			}
			ev.at = time.Unix(0, nanos)
			events <- ev
		}
	}()
	return events
}

func rssMB() float64 { return procStatusMB("VmRSS:") }

// peakRSSMB is the process's RSS high-water mark.
func peakRSSMB() float64 { return procStatusMB("VmHWM:") }

func procStatusMB(field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// BenchmarkLoad runs the load scenarios once each (use -benchtime 1x).
// XDS_LOAD_STREAMS and XDS_LOAD_UNSCOPED_STREAMS change the stream counts.
// The clients run in a child process (rss-MB and heap-MB are the server's)
// but share the machine's cores with it.
func BenchmarkLoad(b *testing.B) {
	streams := envInt("XDS_LOAD_STREAMS", 1000)
	unscoped := envInt("XDS_LOAD_UNSCOPED_STREAMS", 100)
	for _, sc := range []struct {
		name string
		cfg  loadConfig
	}{
		{"scoped-delta", loadConfig{services: 1000, streams: streams, deps: 10, delta: true, conns: 20}},
		{"scoped-sotw", loadConfig{services: 1000, streams: streams, deps: 10, conns: 20}},
		{"unscoped-delta-4MB", loadConfig{services: 1000, streams: unscoped, pad: 4000, delta: true, conns: 20}},
	} {
		b.Run(fmt.Sprintf("%s/streams=%d", sc.name, sc.cfg.streams), func(b *testing.B) {
			var r loadResult
			for b.Loop() {
				r = runLoad(b, sc.cfg)
			}
			b.ReportMetric(float64(r.converge.Milliseconds()), "converge-ms")
			b.ReportMetric(float64(r.pushP50.Microseconds())/1000, "push-p50-ms")
			b.ReportMetric(float64(r.pushP99.Microseconds())/1000, "push-p99-ms")
			b.ReportMetric(float64(r.apply.Microseconds())/1000, "apply-ms")
			b.ReportMetric(float64(r.affected), "affected")
			b.ReportMetric(float64(r.bytesPerProxy)/(1<<20), "MB/proxy")
			b.ReportMetric(r.heapMB, "heap-MB")
			b.ReportMetric(r.rssMB, "rss-MB")
			b.ReportMetric(r.peakMB, "rss-peak-MB")
		})
	}
}

// BenchmarkApplyOneChange is the server side of a one-service change with
// no streams attached: indexing and diffing 1,000 classes.
func BenchmarkApplyOneChange(b *testing.B) {
	for _, sc := range []struct {
		name string
		cfg  loadConfig
	}{
		{"scoped", loadConfig{services: 1000, deps: 10}},
		{"unscoped", loadConfig{services: 1000}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			s := newTestServer(b)
			cl, eps := loadResources(b, sc.cfg, 0)
			_, eps2 := loadResources(b, sc.cfg, 1)
			updates := [2]Update{loadUpdate(sc.cfg, "r0", cl, eps)}
			eps = slices.Clone(eps)
			eps[0] = eps2[0]
			updates[1] = loadUpdate(sc.cfg, "r1", cl, eps)
			if err := s.Apply(updates[0]); err != nil {
				b.Fatal(err)
			}
			i := 1
			for b.Loop() {
				if err := s.Apply(updates[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkResponses compares building the CDS response of 1,000 clusters
// for 100 nodes of one class: this package's shared, pre-marshalled index
// against go-control-plane's snapshot cache, which keeps a snapshot per node
// and marshals every resource again for every response.
func BenchmarkResponses(b *testing.B) {
	const nodes = 100
	cfg := loadConfig{services: 1000}
	cl, _ := loadResources(b, cfg, 0)
	b.Run("shared-index", func(b *testing.B) {
		idx, _ := buildIndex(resource.ClusterType, nil, cl, newWrapperPool())
		req := &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType}
		sub := stream.NewSotwSubscription(nil, true)
		for b.Loop() {
			for range nodes {
				r := sotwFor(newView(emptyIndex, idx), req, &sub, true, "r1")
				if _, err := r.GetDiscoveryResponse(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("snapshot-cache", func(b *testing.B) {
		var msgs []types.Resource
		for _, r := range cl {
			m, err := r.Any.UnmarshalNew()
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		sc := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
		for n := range nodes {
			snap, err := cache.NewSnapshot("v1", map[string][]types.Resource{resource.ClusterType: msgs})
			if err != nil {
				b.Fatal(err)
			}
			if err := sc.SetSnapshot(context.Background(), strconv.Itoa(n), snap); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			for n := range nodes {
				ch := make(chan cache.Response, 1)
				req := &discovery.DiscoveryRequest{TypeUrl: resource.ClusterType, Node: &core.Node{Id: strconv.Itoa(n)}}
				sub := stream.NewSotwSubscription(nil, true)
				if _, err := sc.CreateWatch(req, &sub, ch); err != nil {
					b.Fatal(err)
				}
				if _, err := (<-ch).GetDiscoveryResponse(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
