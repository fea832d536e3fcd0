package apiv1

import "time"

// Workload names one side of measured traffic: a service version of the
// mesh. Version is empty when the metric does not say which version (a
// proxyless client's call counted by target only), and Service names an
// external service or gateway when that is the other side.
type Workload struct {
	Namespace string `json:"namespace,omitempty"`
	Service   string `json:"service"`
	Version   string `json:"version,omitempty"`
}

// EdgeRate is traffic measured by Prometheus between two workloads over
// Window: requests and errors per second. Errors are HTTP 5xx for Envoy and
// non-OK gRPC statuses for proxyless gRPC.
type EdgeRate struct {
	Source            Workload      `json:"source"`
	Destination       Workload      `json:"destination"`
	RequestsPerSecond float64       `json:"requestsPerSecond"`
	ErrorsPerSecond   float64       `json:"errorsPerSecond"`
	Window            time.Duration `json:"window"`
}
