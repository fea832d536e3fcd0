package xds

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitmesh/gitmesh/internal/snapshot"
)

// metrics is the server's prometheus.Collector: pushes, bytes and NACKs by
// type, connected streams, refused streams, Apply latency. It is always
// kept (tests read it) and registered only when Options.Registerer is set.
type metrics struct {
	pushes   *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	nacks    *prometheus.CounterVec
	streams  *prometheus.GaugeVec
	rejected *prometheus.CounterVec
	// rejectedConns counts every refusal, at the handshake or on a stream.
	rejectedConns *prometheus.CounterVec
	dropped       prometheus.Counter
	applySeconds  prometheus.Histogram
	classes       prometheus.Gauge
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics() *metrics {
	return &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_xds_pushes_total", Help: "xDS responses sent, by resource type and protocol.",
		}, []string{"type", "protocol"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_xds_sent_bytes_total", Help: "Encoded size of xDS responses sent, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_xds_nacks_total", Help: "xDS responses rejected by proxies, by resource type.",
		}, []string{"type"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitmesh_xds_connected_streams", Help: "Open ADS streams, by protocol.",
		}, []string{"protocol"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_xds_rejected_streams_total", Help: "ADS streams refused, by gRPC code.",
		}, []string{"code"}),
		rejectedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_xds_rejected_connections_total",
			Help: "Connections and streams refused, by reason: a failed TLS handshake (tls-*), a request over a limit, a malformed or unknown node, a wrong identity.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitmesh_xds_dropped_responses_total", Help: "Responses dropped because a stream's response channel was full.",
		}),
		applySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gitmesh_xds_apply_seconds", Help: "Time to index a revision and wake the affected watches.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		classes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitmesh_xds_classes", Help: "Proxy classes served.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.pushes, m.bytes, m.nacks, m.streams, m.rejected, m.rejectedConns, m.dropped, m.applySeconds, m.classes}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *metrics) applied(d time.Duration, classes int) {
	m.applySeconds.Observe(d.Seconds())
	m.classes.Set(float64(classes))
}

// typeLabel shortens a type URL to its message name for a metric label,
// and folds unknown types into "other": type URLs come from clients, and a
// label per arbitrary string would let one client grow memory without bound.
func typeLabel(typeURL string) string {
	if snapshot.TypeIndex(typeURL) >= 0 {
		return typeURL[strings.LastIndexByte(typeURL, '.')+1:]
	}
	return "other"
}
