package adsload

import (
	"fmt"
	"slices"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Refs are the names one resource makes a proxy subscribe to: what Envoy
// or grpc-go would request next after accepting it.
type Refs struct {
	// Routes are RDS route configuration names (HCM rds in a listener).
	Routes []string
	// Clusters are cluster names routes and TCP proxies send traffic to;
	// only proxyless clients subscribe to clusters by name.
	Clusters []string
	// Assignments are EDS names of EDS clusters.
	Assignments []string
}

var (
	hcmURL = "type.googleapis.com/" + string((&hcmv3.HttpConnectionManager{}).ProtoReflect().Descriptor().FullName())
	tcpURL = "type.googleapis.com/" + string((&tcpv3.TcpProxy{}).ProtoReflect().Descriptor().FullName())
)

// RefsOf decodes one resource (its Any value) of typeURL and returns what it
// references. Endpoints and unknown types reference nothing.
func RefsOf(typeURL string, value []byte) (Refs, error) {
	var r Refs
	switch typeURL {
	case resource.ListenerType:
		l := &listenerv3.Listener{}
		if err := proto.Unmarshal(value, l); err != nil {
			return r, fmt.Errorf("decode listener: %w", err)
		}
		if err := r.addListener(l); err != nil {
			return r, fmt.Errorf("listener %q: %w", l.GetName(), err)
		}
	case resource.RouteType:
		rc := &routev3.RouteConfiguration{}
		if err := proto.Unmarshal(value, rc); err != nil {
			return r, fmt.Errorf("decode route configuration: %w", err)
		}
		r.addRoutes(rc)
	case resource.ClusterType:
		c := &clusterv3.Cluster{}
		if err := proto.Unmarshal(value, c); err != nil {
			return r, fmt.Errorf("decode cluster: %w", err)
		}
		if c.GetType() == clusterv3.Cluster_EDS {
			name := c.GetEdsClusterConfig().GetServiceName()
			if name == "" {
				name = c.GetName()
			}
			r.Assignments = append(r.Assignments, name)
		}
	}
	r.Routes = sortedUnique(r.Routes)
	r.Clusters = sortedUnique(r.Clusters)
	r.Assignments = sortedUnique(r.Assignments)
	return r, nil
}

func (r *Refs) addListener(l *listenerv3.Listener) error {
	if api := l.GetApiListener().GetApiListener(); api != nil {
		if err := r.addFilter(api); err != nil {
			return err
		}
	}
	chains := l.GetFilterChains()
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(slices.Clip(chains), d)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			if tc := f.GetTypedConfig(); tc != nil {
				if err := r.addFilter(tc); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// addFilter follows an HCM (RDS name or inline routes) or a TCP proxy.
func (r *Refs) addFilter(a *anypb.Any) error {
	switch a.GetTypeUrl() {
	case hcmURL:
		h := &hcmv3.HttpConnectionManager{}
		if err := proto.Unmarshal(a.GetValue(), h); err != nil {
			return fmt.Errorf("decode http connection manager: %w", err)
		}
		if rds := h.GetRds(); rds != nil {
			r.Routes = append(r.Routes, rds.GetRouteConfigName())
		}
		if rc := h.GetRouteConfig(); rc != nil {
			r.addRoutes(rc)
		}
	case tcpURL:
		t := &tcpv3.TcpProxy{}
		if err := proto.Unmarshal(a.GetValue(), t); err != nil {
			return fmt.Errorf("decode tcp proxy: %w", err)
		}
		if c := t.GetCluster(); c != "" {
			r.Clusters = append(r.Clusters, c)
		}
		for _, w := range t.GetWeightedClusters().GetClusters() {
			r.Clusters = append(r.Clusters, w.GetName())
		}
	}
	return nil
}

func (r *Refs) addRoutes(rc *routev3.RouteConfiguration) {
	for _, vh := range rc.GetVirtualHosts() {
		for _, rt := range vh.GetRoutes() {
			a := rt.GetRoute()
			if a == nil {
				continue
			}
			if c := a.GetCluster(); c != "" {
				r.Clusters = append(r.Clusters, c)
			}
			for _, w := range a.GetWeightedClusters().GetClusters() {
				r.Clusters = append(r.Clusters, w.GetName())
			}
		}
	}
}

// sortedUnique sorts and dedupes s in place. Names collected from sorted
// holdings usually come sorted already (a cluster's assignment has its
// name), so checking first saves sorting 4,500 names per stream.
func sortedUnique(s []string) []string {
	if !slices.IsSorted(s) {
		slices.Sort(s)
	}
	return slices.Compact(s)
}

// entry is one distinct resource as a client sees it: decoded once per
// process, shared by every stream that receives it.
type entry struct {
	name, version string
	hash          uint64
	refs          Refs
	err           error
}

// entryCache memoises entries by content, so 1,000 streams receiving the
// same 4 MB of clusters decode each cluster once, not 1,000 times.
type entryCache struct {
	mu    sync.RWMutex
	m     map[string]*entry            // SotW: by the resource's bytes
	named map[string]map[string]*entry // delta: by name, then version
}

func newEntryCache() *entryCache {
	return &entryCache{m: map[string]*entry{}, named: map[string]map[string]*entry{}}
}

// getNamed is get keyed by name and version, which delta sends along. Two
// map levels keep lookups free of allocation (m[string(b)] does not copy).
func (c *entryCache) getNamed(name, version []byte, build func() *entry) *entry {
	c.mu.RLock()
	e, ok := c.named[string(name)][string(version)]
	c.mu.RUnlock()
	if ok {
		return e
	}
	e = build()
	c.mu.Lock()
	byVersion := c.named[string(name)]
	if byVersion == nil {
		byVersion = map[string]*entry{}
		c.named[e.name] = byVersion
	}
	if prev, ok := byVersion[string(version)]; ok {
		e = prev
	} else {
		byVersion[e.version] = e
	}
	c.mu.Unlock()
	return e
}

// get returns the entry under key (not copied when present: a map lookup
// by string(bytes) does not allocate), or builds and stores it.
func (c *entryCache) get(key []byte, build func() *entry) *entry {
	c.mu.RLock()
	e, ok := c.m[string(key)]
	c.mu.RUnlock()
	if ok {
		return e
	}
	e = build()
	c.mu.Lock()
	if prev, ok := c.m[string(key)]; ok {
		e = prev
	} else {
		c.m[string(key)] = e
	}
	c.mu.Unlock()
	return e
}
