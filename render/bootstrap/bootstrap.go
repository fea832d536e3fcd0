// Package bootstrap writes the static configuration a proxy starts with: an
// Envoy bootstrap for sidecars and gateways, and a gRPC xDS bootstrap for
// proxyless gRPC applications. Both point the proxy at gitmesh's ADS server
// under its node id; everything else arrives over xDS.
//
// Like render, it is pure: the same options give the same bytes.
package bootstrap

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/proxyports"
)

// XDSClusterName is the static cluster in Envoy bootstraps that reaches
// gitmesh's ADS server.
const XDSClusterName = "xds-grpc"

// ServerListenerTemplate is the listener name grpc-go's xDS-enabled servers
// ask for; render names proxyless server listeners with it.
const ServerListenerTemplate = "grpc/server?xds.resource.listening_address=%s"

// Options describe one proxy instance.
type Options struct {
	// NodeID is CLASS/INSTANCE, e.g. sidecar/default/reviews/v2/reviews-v2-7f9c.
	NodeID string
	// XDSAddress is host:port of gitmesh's ADS server.
	XDSAddress string
	// Delta selects incremental xDS instead of state of the world.
	Delta bool
	// AdminPort is Envoy's admin port (default 15000); the rendered stats
	// listener scrapes it.
	AdminPort int
	// TLS, when set, makes the proxy speak mutual TLS to the ADS server with
	// these files; nil means plaintext (gitmesh must run with --xds-insecure).
	TLS *TLSFiles
	// SDS, when set, makes Envoy's xDS cluster take its client certificate
	// and CA from file-based SDS (sds.go), which Envoy reloads when the
	// files are renamed into place, instead of TLS's files, which it reads
	// once. Envoy only; it takes precedence over TLS there.
	SDS *SDSFiles
	// RefreshInterval is how often grpc-go re-reads the certificate files
	// (default 60s). It must be well below the workload certificate's
	// lifetime: grpc-go's own default of 10 minutes would keep presenting an
	// expired certificate after a short-lived one was rotated on disk.
	RefreshInterval string
}

// TLSFiles are paths of the proxy's bootstrap client certificate, its key and
// the CA bundle that signs gitmesh's serving certificate.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string
}

func (o Options) check() (host string, port int, err error) {
	if _, _, err := nodeid.Parse(o.NodeID); err != nil {
		return "", 0, err
	}
	h, p, err := net.SplitHostPort(o.XDSAddress)
	if err != nil {
		return "", 0, fmt.Errorf("xds address %q: want host:port: %w", o.XDSAddress, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("xds address %q: bad port %q", o.XDSAddress, p)
	}
	if h == "" {
		h = "127.0.0.1"
	}
	return h, port, nil
}

// Envoy returns an Envoy bootstrap (JSON) for a sidecar or gateway.
func Envoy(o Options) ([]byte, error) {
	host, port, err := o.check()
	if err != nil {
		return nil, err
	}
	class, _, _ := nodeid.Parse(o.NodeID)
	admin := o.AdminPort
	if admin == 0 {
		admin = proxyports.Admin
	}
	apiType := corev3.ApiConfigSource_GRPC
	if o.Delta {
		apiType = corev3.ApiConfigSource_DELTA_GRPC
	}
	ads := &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if net.ParseIP(host) != nil {
		discovery = clusterv3.Cluster_STATIC
	}
	xds := &clusterv3.Cluster{
		Name:                 XDSClusterName,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
		ConnectTimeout:       durationpb.New(1e9),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": h2,
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: XDSClusterName,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
						Address: socketAddress(host, port),
					}},
				}},
			}},
		},
	}
	switch {
	case o.SDS != nil:
		ts, err := sdsTLS(o.SDS, host)
		if err != nil {
			return nil, err
		}
		xds.TransportSocket = ts
	case o.TLS != nil:
		ts, err := upstreamTLS(o.TLS, host)
		if err != nil {
			return nil, err
		}
		xds.TransportSocket = ts
	}
	meta, err := structpb.NewStruct(map[string]any{"gitmesh.io/class": class.Name})
	if err != nil {
		return nil, err
	}
	b := &bootstrapv3.Bootstrap{
		Node:        &corev3.Node{Id: o.NodeID, Cluster: TracingService(class), Metadata: meta},
		StatsConfig: statsConfig(class),
		Admin: &bootstrapv3.Admin{
			Address: socketAddress("127.0.0.1", admin),
		},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             apiType,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
						EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName},
					},
				}},
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xds}},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap for %s: %w", o.NodeID, err)
	}
	return marshal(b)
}

func upstreamTLS(f *TLSFiles, sni string) (*corev3.TransportSocket, error) {
	ctx := &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(f.CertFile),
				PrivateKey:       fileSource(f.KeyFile),
			}},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
				ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: fileSource(f.CAFile)},
			},
		},
	}
	return tlsSocket(ctx)
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

func socketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

// marshal prints a proto as indented JSON with stable spacing: protojson's
// own spacing is deliberately unstable, so it is re-indented by encoding/json.
func marshal(m proto.Message) ([]byte, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	return reindent(raw)
}

func reindent(raw []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// GRPC returns a gRPC xDS bootstrap (the GRPC_XDS_BOOTSTRAP file) for a
// proxyless application. With TLS set, the file also defines the
// "default" certificate provider that rendered proxyless resources use for
// mTLS between applications, fed by the same files.
func GRPC(o Options) ([]byte, error) {
	if _, _, err := o.check(); err != nil {
		return nil, err
	}
	class, _, _ := nodeid.Parse(o.NodeID)
	refresh := o.RefreshInterval
	if refresh == "" {
		refresh = "60s"
	}
	creds := []map[string]any{{"type": "insecure"}}
	if o.TLS != nil {
		creds = []map[string]any{{"type": "tls", "config": map[string]any{
			"ca_certificate_file": o.TLS.CAFile,
			"certificate_file":    o.TLS.CertFile,
			"private_key_file":    o.TLS.KeyFile,
			"refresh_interval":    refresh,
		}}}
	}
	server := map[string]any{
		"server_uri":      o.XDSAddress,
		"channel_creds":   creds,
		"server_features": []string{"xds_v3"},
	}
	doc := map[string]any{
		"xds_servers": []any{server},
		"node": map[string]any{
			"id":       o.NodeID,
			"cluster":  TracingService(class),
			"metadata": map[string]any{"gitmesh.io/class": class.Name},
		},
		"server_listener_resource_name_template": ServerListenerTemplate,
	}
	if o.TLS != nil {
		doc["certificate_providers"] = map[string]any{
			"default": map[string]any{
				"plugin_name": "file_watcher",
				"config": map[string]any{
					"certificate_file":    o.TLS.CertFile,
					"private_key_file":    o.TLS.KeyFile,
					"ca_certificate_file": o.TLS.CAFile,
					"refresh_interval":    refresh,
				},
			},
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
