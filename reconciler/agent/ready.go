package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ReadyPath is the agent's readiness endpoint. The injected agent
// container's startupProbe polls it: Kubernetes holds the containers after
// a native sidecar until its startup probe succeeds, so a proxyless
// application (or Envoy) never starts before its certificate and bootstrap
// exist.
const ReadyPath = "/healthz/ready"

// readiness answers ReadyPath: 503 until the first certificate (and the
// bootstraps asked for) are written, 200 after. It never goes back: a
// later renewal failure keeps the last good files in place, and the probe
// is a startup gate, not a liveness check.
type readiness struct{ ready atomic.Bool }

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != ReadyPath {
		http.NotFound(w, req)
		return
	}
	if !r.ready.Load() {
		http.Error(w, "certificate and bootstrap not written yet", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprintln(w, "ready")
}

// serveReady serves r on o.ReadyListener or o.ReadyAddress until ctx ends.
// It listens before it returns, so a port in use is an error of Run.
func serveReady(ctx context.Context, o Options, r *readiness) error {
	lis := o.ReadyListener
	if lis == nil {
		if o.ReadyAddress == "" {
			return nil
		}
		var err error
		if lis, err = net.Listen("tcp", o.ReadyAddress); err != nil {
			return fmt.Errorf("agent: status port: %w", err)
		}
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.Logger.Error("status server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	return nil
}
