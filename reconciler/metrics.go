package reconciler

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the reconciler's Prometheus metrics, one collector so that a
// test registry can take a fresh set.
type metrics struct {
	duration    *prometheus.HistogramVec
	total       *prometheus.CounterVec
	failures    *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	info        *prometheus.GaugeVec
	issued      prometheus.Counter
	rotations   prometheus.Counter
	// endpointPushes counts re-renders for discovered endpoints by result.
	endpointPushes *prometheus.CounterVec
	// classLossRefused counts revisions refused by the class-loss guard.
	classLossRefused prometheus.Counter
	// persistFailures counts failed writes of the state dir.
	persistFailures prometheus.Counter

	mu      sync.Mutex
	current string
}

func newMetrics() *metrics {
	return &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gitmesh_reconcile_duration_seconds",
			Help:    "Time to reconcile a new revision, from fetch to apply.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_reconcile_total",
			Help: "Reconciles of new revisions by result (applied or failed).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_reconcile_failures_total",
			Help: "Failed reconciles by the step that failed.",
		}, []string{"step"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gitmesh_last_success_timestamp_seconds",
			Help: "Unix time of the last successful apply.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gitmesh_revision_info",
			Help: "The revision being served (value 1).",
		}, []string{"revision"}),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitmesh_certificates_issued_total",
			Help: "Workload certificates issued by the CA and served by SDS.",
		}),
		rotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitmesh_certificate_rotations_total",
			Help: "Secrets-only pushes: certificates renewed or the trust bundle changed.",
		}),
		endpointPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitmesh_endpoint_pushes_total",
			Help: "Applies of discovered endpoint changes (no new revision), by result (applied, failed).",
		}, []string{"result"}),
		classLossRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitmesh_class_loss_refused_total",
			Help: "Revisions refused because they removed more than --max-class-loss of the live proxy classes.",
		}),
		persistFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitmesh_state_persist_failures_total",
			Help: "Failed writes of the last good state to the state dir (each is retried with backoff).",
		}),
	}
}

// collectors lists every metric once, for Describe and Collect.
func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.total, m.failures, m.lastSuccess, m.info, m.issued, m.rotations, m.endpointPushes, m.classLossRefused, m.persistFailures}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

func (m *metrics) observe(result string, d time.Duration) {
	m.duration.WithLabelValues(result).Observe(d.Seconds())
	m.total.WithLabelValues(result).Inc()
}

func (m *metrics) failure(step string) { m.failures.WithLabelValues(step).Inc() }

func (m *metrics) success(t time.Time) { m.lastSuccess.Set(float64(t.UnixNano()) / 1e9) }

// revision makes exactly one revision label live at a time.
func (m *metrics) revision(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current != "" {
		m.info.DeleteLabelValues(m.current)
	}
	m.current = id
	m.info.WithLabelValues(id).Set(1)
}
