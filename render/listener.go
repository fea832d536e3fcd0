package render

import (
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Listener building blocks shared by sidecars and gateways.

// Network filter names.
const (
	filterTCPProxy       = "envoy.filters.network.tcp_proxy"
	filterNetRBACDeny    = "envoy.filters.network.rbac.deny"
	filterNetRBACAllow   = "envoy.filters.network.rbac"
	listenerTLSInspector = "envoy.filters.listener.tls_inspector"
)

// hcmFilter wraps an HCM as a listener's network filter.
func (b *builder) hcmFilter(path string, h *hcmv3.HttpConnectionManager) *listenerv3.Filter {
	return &listenerv3.Filter{Name: hcmName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: b.pack(path, h)}}
}

// tcpProxyFilter forwards a connection to one cluster, or spreads
// connections over weighted clusters.
func (b *builder) tcpProxyFilter(path, statPrefix string, clusters []string, weights []int) *listenerv3.Filter {
	tp := &tcpproxyv3.TcpProxy{StatPrefix: statPrefix}
	if len(clusters) == 1 {
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_Cluster{Cluster: clusters[0]}
	} else {
		wc := &tcpproxyv3.TcpProxy_WeightedCluster{}
		for i, c := range clusters {
			w := weights[i]
			if w < 0 {
				w = 0
			}
			wc.Clusters = append(wc.Clusters, &tcpproxyv3.TcpProxy_WeightedCluster_ClusterWeight{Name: c, Weight: uint32(w)})
		}
		tp.ClusterSpecifier = &tcpproxyv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	return &listenerv3.Filter{Name: filterTCPProxy, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: b.pack(path, tp)}}
}

// netRBACFilters renders the network RBAC filters of a TCP port, deny first.
func (b *builder) netRBACFilters(path, statPrefix string, deny, allow *rbacv3.RBAC) []*listenerv3.Filter {
	var out []*listenerv3.Filter
	for _, f := range []struct {
		name  string
		rules *rbacv3.RBAC
	}{{filterNetRBACDeny, deny}, {filterNetRBACAllow, allow}} {
		if f.rules == nil {
			continue
		}
		out = append(out, &listenerv3.Filter{Name: f.name, ConfigType: &listenerv3.Filter_TypedConfig{
			TypedConfig: b.pack(path, &rbacnetv3.RBAC{Rules: f.rules, StatPrefix: statPrefix}),
		}})
	}
	return out
}

// statsListener serves /stats/prometheus from the admin port, so every
// Envoy proxy can be scraped the way Istio's are. It is one shared resource.
func (b *builder) statsListener() *Resource {
	return b.intern(resource.ListenerType, StatsListener, StatsListener, "", func() (proto.Message, []*Resource) {
		rc := &routev3.RouteConfiguration{
			Name: "stats",
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    "stats",
				Domains: []string{"*"},
				Routes: []*routev3.Route{{
					Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/stats/prometheus"}},
					Action: &routev3.Route_Route{Route: &routev3.RouteAction{
						ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: StatsCluster},
					}},
				}},
			}},
		}
		h, deps := b.hcm(hcmSpec{statPrefix: "stats", inline: rc})
		return &listenerv3.Listener{
			Name:         StatsListener,
			Address:      socketAddr("0.0.0.0", StatsPort),
			FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{b.hcmFilter("", h)}}},
		}, append(deps, b.statsCluster())
	})
}

// catchAll is a route matching every path.
func catchAll() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}
}

// serviceDomains are the names a client may use for a service on a port:
// name.ns, name.ns.svc and the FQDN, plus the short name for callers in the
// same namespace (as DNS search paths resolve it), each with and without
// :port. HTTP services share one wildcard listener per port, so Host (not
// the VIP) is what tells them apart.
func (b *builder) serviceDomains(t *model.Service, port int, callerNS string) []string {
	host := b.ix.host(t)
	names := []string{t.Name + "." + t.Namespace, t.Name + "." + t.Namespace + ".svc", host}
	if callerNS == t.Namespace {
		names = append([]string{t.Name}, names...)
	}
	out := make([]string, 0, 2*len(names))
	for _, n := range names {
		out = append(out, n, hostPort(n, port))
	}
	return out
}

// dedupeDomains drops domains an earlier virtual host already claimed
// (Envoy rejects a route config with a domain twice); vhosts are in name
// order, so the winner is deterministic. Policies report such clashes.
func dedupeDomains(vhs []*routev3.VirtualHost) []*routev3.VirtualHost {
	// Clashes are rare: look for one with a sorted copy before paying for
	// a map.
	n := 0
	for _, vh := range vhs {
		n += len(vh.Domains)
	}
	all := make([]string, 0, n)
	for _, vh := range vhs {
		all = append(all, vh.Domains...)
	}
	slices.Sort(all)
	clash := false
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			clash = true
			break
		}
	}
	if !clash {
		return vhs
	}
	seen := map[string]bool{}
	out := vhs[:0]
	for _, vh := range vhs {
		var keep []string
		for _, d := range vh.Domains {
			if !seen[d] {
				keep = append(keep, d)
			}
		}
		if len(keep) == 0 {
			continue
		}
		if len(keep) != len(vh.Domains) {
			cp := proto.Clone(vh).(*routev3.VirtualHost)
			cp.Domains = keep
			vh = cp
		}
		for _, d := range vh.Domains {
			seen[d] = true
		}
		out = append(out, vh)
	}
	return out
}
