// Package promrates measures traffic between the mesh's workloads with a
// Prometheus: it runs the queries in queries.go through Prometheus' HTTP API
// and returns one apiv1.EdgeRate per source and destination. The status
// API's graph (api.Options.Rates) puts them on its edges; serve wires it with
// --prometheus-url.
package promrates

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

const (
	// DefaultWindow is the rate window: long enough for a 15s scrape
	// interval to give several samples.
	DefaultWindow = time.Minute
	// queryTimeout bounds one EdgeRates call, all queries together: the
	// graph must answer without rates rather than hang on a slow Prometheus.
	queryTimeout = 5 * time.Second
	// cacheFor is how long one answer is reused: the console polls every few
	// seconds per open browser, and Prometheus' answer cannot change faster
	// than its scrape interval anyway.
	cacheFor = 5 * time.Second
)

// Client is a RatesSource backed by a Prometheus server.
type Client struct {
	api    promv1.API
	window time.Duration

	// mu serialises queries: callers that arrive while one runs wait for it
	// and share its answer instead of sending their own.
	mu      sync.Mutex
	at      time.Time
	rates   []apiv1.EdgeRate
	lastErr error
}

// New returns a client of the Prometheus at url (http://host:9090) that
// measures rates over window (DefaultWindow when 0).
func New(url string, window time.Duration) (*Client, error) {
	if window == 0 {
		window = DefaultWindow
	}
	if window < time.Second {
		return nil, fmt.Errorf("prometheus rate window %q: must be at least 1s", window)
	}
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("prometheus url %q: %w", url, err)
	}
	return &Client{api: promv1.NewAPI(c), window: window}, nil
}

// EdgeRates returns the measured rates, at most cacheFor old.
func (c *Client) EdgeRates(ctx context.Context) ([]apiv1.EdgeRate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < cacheFor {
		return c.rates, c.lastErr
	}
	// The answer is shared: one caller that goes away (a closed browser tab)
	// must not cache "context canceled" for everyone else.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	c.rates, c.lastErr = c.fetch(ctx)
	c.at = time.Now()
	return c.rates, c.lastErr
}

// key is one edge.
type key struct{ src, dst apiv1.Workload }

func (c *Client) fetch(ctx context.Context) ([]apiv1.EdgeRate, error) {
	now := time.Now()
	edges := map[key]*apiv1.EdgeRate{}
	for _, q := range queries(c.window) {
		v, _, _, err := c.api.Query(ctx, q.expr, now)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %s: %w", q.name, err)
		}
		vec, ok := v.(model.Vector)
		if !ok {
			return nil, fmt.Errorf("prometheus query %s: got a %s, want a vector", q.name, v.Type())
		}
		for _, s := range vec {
			src, dst, ok := edge(q.family, s.Metric)
			if !ok {
				continue
			}
			k := key{src, dst}
			e := edges[k]
			if e == nil {
				e = &apiv1.EdgeRate{Source: src, Destination: dst, Window: c.window}
				edges[k] = e
			}
			if q.errors {
				e.ErrorsPerSecond += float64(s.Value)
			} else {
				e.RequestsPerSecond += float64(s.Value)
			}
		}
	}
	out := make([]apiv1.EdgeRate, 0, len(edges))
	for _, e := range edges {
		// A series that did not move in the window (a client's failed
		// attempts at startup, a proxy that stopped calling) is no traffic.
		if e.RequestsPerSecond == 0 && e.ErrorsPerSecond == 0 {
			continue
		}
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b apiv1.EdgeRate) int {
		return cmp.Or(compareWorkload(a.Source, b.Source), compareWorkload(a.Destination, b.Destination))
	})
	return out, nil
}

func compareWorkload(a, b apiv1.Workload) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Version, b.Version))
}
