package render

import (
	"bytes"
	"encoding/json"
	"fmt"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// ConfigDump renders a proxy's resources the way Envoy's /config_dump shows
// them (an envoy.admin.v3.ConfigDump with clusters, endpoints, listeners and
// routes as dynamic resources with their versions), so `gitmesh render` and
// PR checks show users a familiar shape. The JSON is re-indented with
// encoding/json because protojson's whitespace is deliberately unstable;
// the result is byte-stable for equal input.
func ConfigDump(p *Proxy) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("config dump: no proxy")
	}
	any := func(r *Resource) *anypb.Any {
		return &anypb.Any{TypeUrl: r.typeURL, Value: r.bytes}
	}
	clusters := &adminv3.ClustersConfigDump{}
	for _, r := range p.Resources(resource.ClusterType) {
		clusters.DynamicActiveClusters = append(clusters.DynamicActiveClusters,
			&adminv3.ClustersConfigDump_DynamicCluster{VersionInfo: r.Version, Cluster: any(r)})
	}
	endpoints := &adminv3.EndpointsConfigDump{}
	for _, r := range p.Resources(resource.EndpointType) {
		endpoints.DynamicEndpointConfigs = append(endpoints.DynamicEndpointConfigs,
			&adminv3.EndpointsConfigDump_DynamicEndpointConfig{VersionInfo: r.Version, EndpointConfig: any(r)})
	}
	listeners := &adminv3.ListenersConfigDump{}
	for _, r := range p.Resources(resource.ListenerType) {
		listeners.DynamicListeners = append(listeners.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name:        r.Name,
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: r.Version, Listener: any(r)},
		})
	}
	routes := &adminv3.RoutesConfigDump{}
	for _, r := range p.Resources(resource.RouteType) {
		routes.DynamicRouteConfigs = append(routes.DynamicRouteConfigs,
			&adminv3.RoutesConfigDump_DynamicRouteConfig{VersionInfo: r.Version, RouteConfig: any(r)})
	}
	dump := &adminv3.ConfigDump{}
	for _, m := range []proto.Message{clusters, endpoints, listeners, routes} {
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("config dump %s: %w", p.Class, err)
		}
		dump.Configs = append(dump.Configs, a)
	}
	return StableJSON(dump)
}

// StableJSON marshals a proto (Any values resolved through the global
// registry, which every Envoy type render uses is linked into) as JSON with
// fixed two-space indentation and a trailing newline.
func StableJSON(m proto.Message) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("indent %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
