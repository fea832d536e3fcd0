// Package telemetry gives the grpc-canary programs grpc-go's OpenTelemetry
// metrics (google.golang.org/grpc/stats/opentelemetry) on a Prometheus
// /metrics endpoint, so a Prometheus can measure the canary's split and
// gitmesh's --prometheus-url can put it on the console's graph.
//
// Every series carries the program's OpenTelemetry resource as labels:
// service_namespace, service_name and service_version (the semantic
// conventions' service.namespace, service.name and service.version,
// overridable with OTEL_RESOURCE_ATTRIBUTES). That names the source of a
// client's calls and the version of a server's. The destination version of
// a client's call comes from grpc-go's optional label grpc.lb.backend_service,
// which the xDS balancer sets to the cluster it picked
// ("outbound|50051|v2|greeter.default.svc.cluster.local", render/NAMES.md).
// reconciler/promrates owns the queries that read these labels.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats/opentelemetry"
)

// BackendServiceLabel is grpc-go's optional per-attempt label naming the xDS
// cluster a call went to; off unless asked for.
const BackendServiceLabel = "grpc.lb.backend_service"

// Workload names the program in its metrics.
type Workload struct {
	Namespace, Service, Version string
}

// Metrics is a running /metrics endpoint and the meter provider behind it.
type Metrics struct {
	provider *sdkmetric.MeterProvider
	srv      *http.Server
	addr     net.Addr
}

// Start serves /metrics on addr (host:port; port 0 picks one) for w.
func Start(addr string, w Workload) (*Metrics, error) {
	res, err := resource.New(context.Background(),
		resource.WithAttributes(
			attribute.String("service.namespace", w.Namespace),
			attribute.String("service.name", w.Service),
			attribute.String("service.version", w.Version),
		),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES wins
	)
	if err != nil {
		return nil, fmt.Errorf("metrics resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		// Resource attributes as labels on every series, not only on
		// target_info: a rate query then needs no join to say whose it is.
		otelprom.WithResourceAsConstantLabels(attribute.NewAllowKeysFilter(
			"service.namespace", "service.name", "service.version")),
	)
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &Metrics{
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res)),
		srv:      &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		addr:     lis.Addr(),
	}
	go func() {
		if err := m.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("metrics: %v", err)
		}
	}()
	return m, nil
}

// Addr is the bound address of /metrics.
func (m *Metrics) Addr() net.Addr { return m.addr }

func (m *Metrics) options() opentelemetry.Options {
	return opentelemetry.Options{MetricsOptions: opentelemetry.MetricsOptions{
		MeterProvider:  m.provider,
		OptionalLabels: []string{BackendServiceLabel},
	}}
}

// DialOption records grpc-go's client metrics (grpc.client.attempt.*,
// grpc.client.call.duration) with the backend service label.
func (m *Metrics) DialOption() grpc.DialOption { return opentelemetry.DialOption(m.options()) }

// ServerOption records grpc-go's server metrics (grpc.server.call.*).
func (m *Metrics) ServerOption() grpc.ServerOption { return opentelemetry.ServerOption(m.options()) }

// Close stops serving /metrics.
func (m *Metrics) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return errors.Join(m.srv.Shutdown(ctx), m.provider.Shutdown(ctx))
}
