package bootstrap

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"

	goldentest "github.com/gitmesh/gitmesh/internal/golden"
	"github.com/gitmesh/gitmesh/internal/nodeid"
)

// TestTracingService pins Istio's naming: SERVICE.NAMESPACE for every
// version of a service, the gateway's name for a gateway.
func TestTracingService(t *testing.T) {
	for class, want := range map[string]string{
		"sidecar/default/reviews/v2": "reviews.default",
		"proxyless/shop/greeter/v1":  "greeter.shop",
		"ingress/bookinfo-gateway":   "bookinfo-gateway",
		"egress/egress":              "egress",
	} {
		c, err := nodeid.ParseClass(class)
		if err != nil {
			t.Fatal(err)
		}
		if got := TracingService(c); got != want {
			t.Errorf("TracingService(%s) = %q, want %q", class, got, want)
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Check(t, filepath.Join("testdata", name), got)
}

func TestEnvoyBootstrap(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"sidecar.envoy.json", Options{NodeID: "sidecar/default/reviews/v2/reviews-v2-7f9c", XDSAddress: "127.0.0.1:15010"}},
		{"ingress-delta-tls.envoy.json", Options{
			NodeID: "ingress/bookinfo-gateway/gw-0", XDSAddress: "gitmesh.gitmesh-system.svc:15010", Delta: true,
			TLS: &TLSFiles{CertFile: "/etc/gitmesh/cert.pem", KeyFile: "/etc/gitmesh/key.pem", CAFile: "/etc/gitmesh/ca.pem"},
		}},
		{"sidecar-sds.envoy.json", Options{
			NodeID: "sidecar/default/reviews/v2/reviews-v2-7f9c", XDSAddress: "gitmesh.gitmesh-system.svc:15010",
			SDS: &SDSFiles{CertFile: "/var/run/gitmesh/certs/xds-cert.json", CAFile: "/var/run/gitmesh/certs/xds-ca.json", Dir: "/var/run/gitmesh/certs"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Envoy(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			// What we print must read back as a valid Envoy bootstrap.
			var b bootstrapv3.Bootstrap
			if err := protojson.Unmarshal(got, &b); err != nil {
				t.Fatalf("bootstrap does not parse: %v", err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatalf("bootstrap does not validate: %v", err)
			}
			if b.GetNode().GetId() != tc.opts.NodeID {
				t.Errorf("node id = %q, want %q", b.GetNode().GetId(), tc.opts.NodeID)
			}
			// Envoy's Zipkin tracer reports node.cluster as the service
			// name: it must be the name the console's trace link searches.
			class, _, _ := nodeid.Parse(tc.opts.NodeID)
			if c := b.GetNode().GetCluster(); c != TracingService(class) {
				t.Errorf("node.cluster = %q, want the tracing service name %q", c, TracingService(class))
			}
			golden(t, tc.name, got)
		})
	}
}

func TestGRPCBootstrap(t *testing.T) {
	got, err := GRPC(Options{
		NodeID: "proxyless/default/greeter-client/v1/client-0", XDSAddress: "127.0.0.1:15010",
		TLS: &TLSFiles{CertFile: "cert.pem", KeyFile: "key.pem", CAFile: "ca.pem"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["server_listener_resource_name_template"] != ServerListenerTemplate {
		t.Errorf("server listener template = %v", doc["server_listener_resource_name_template"])
	}
	golden(t, "proxyless-tls.grpc.json", got)
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{NodeID: "reviews", XDSAddress: "127.0.0.1:15010"}, `node id "reviews" is not CLASS/INSTANCE`},
		{Options{NodeID: "sidecar/default/reviews/pod", XDSAddress: "127.0.0.1:15010"}, `node id "sidecar/default/reviews/pod": want sidecar/NAMESPACE/SERVICE/VERSION/INSTANCE (got 4 parts)`},
		{Options{NodeID: "gateway/x/pod", XDSAddress: "127.0.0.1:15010"}, `unknown proxy kind "gateway"`},
		{Options{NodeID: "ingress/gw/", XDSAddress: "127.0.0.1:15010"}, `node id "ingress/gw/": empty instance`},
		{Options{NodeID: "ingress/gw/pod", XDSAddress: "127.0.0.1"}, `xds address "127.0.0.1": want host:port`},
		{Options{NodeID: "ingress/gw/pod", XDSAddress: "h:99999"}, `bad port "99999"`},
	} {
		_, err := Envoy(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Envoy(%+v) error = %v, want it to contain %q", tc.opts, err, tc.want)
		}
		_, err = GRPC(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("GRPC(%+v) error = %v, want it to contain %q", tc.opts, err, tc.want)
		}
	}
}
