package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/cache"
)

// Health is discovery's state for gitmesh's status: whether the caches are
// complete and current, and if not, why.
type Health struct {
	// Synced is true once every informer has listed (WaitForSync).
	Synced bool
	// Reachable is false while the API server cannot be reached; the
	// endpoints served meanwhile are the last known ones.
	Reachable bool
	// Error is the last error that makes discovery unreliable: why the API
	// server is unreachable, or why a watch fails (RBAC, say). It holds no
	// credentials.
	Error string
	// UnreachableSince is when the API server was first found unreachable;
	// zero while it is reachable.
	UnreachableSince time.Time
	// LastEvent is when the last watched change arrived.
	LastEvent time.Time
}

// healthState is Health's mutable form, guarded by Discovery.mu.
type healthState struct {
	synced           bool
	reachable        bool
	reachErr         string
	unreachableSince time.Time
	lastEvent        time.Time
	// watchErrs are failures the API server answered (forbidden, no such
	// resource) by informer, each cleared when its informer lists again.
	watchErrs map[string]watchErr
}

// watchErr is one informer's failing list/watch.
type watchErr struct {
	msg string
	inf cache.SharedIndexInformer
	rv  string // the informer's last synced version when it failed
}

// Health returns the current health.
func (d *Discovery) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := Health{
		Synced:           d.health.synced,
		Reachable:        d.health.reachable,
		UnreachableSince: d.health.unreachableSince,
		LastEvent:        d.health.lastEvent,
	}
	if !h.Reachable && d.health.reachErr != "" {
		h.Error = d.health.reachErr
	} else if len(d.health.watchErrs) > 0 {
		msgs := make([]string, 0, len(d.health.watchErrs))
		for _, w := range d.health.watchErrs {
			msgs = append(msgs, w.msg)
		}
		slices.Sort(msgs)
		h.Error = strings.Join(msgs, "; ")
	}
	return h
}

// watchErrorHandler records list/watch failures of one informer. Expired
// resource versions and closed streams are routine (the informer relists)
// and not recorded. An error the API server answered means it is reachable
// but refuses this informer; any other error means it is unreachable.
func (d *Discovery) watchErrorHandler(resource, ns string, inf cache.SharedIndexInformer) cache.WatchErrorHandler {
	where := resource
	if ns != "" {
		where += " in " + ns
	}
	return func(_ *cache.Reflector, err error) {
		if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) ||
			errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return
		}
		msg := fmt.Sprintf("watch %s: %s", where, redact(err))
		var status apierrors.APIStatus
		if !errors.As(err, &status) {
			d.markUnreachable(msg)
			return
		}
		d.mu.Lock()
		if d.health.watchErrs == nil {
			d.health.watchErrs = map[string]watchErr{}
		}
		_, known := d.health.watchErrs[where]
		d.health.watchErrs[where] = watchErr{msg: msg, inf: inf, rv: inf.LastSyncResourceVersion()}
		d.mu.Unlock()
		if !known {
			d.log.Warn("kubernetes watch failing", "error", msg)
			d.notify()
		}
	}
}

// probeLoop probes the API server at once and then every probe interval
// until ctx ends. client-go's reflector retries a refused connection
// without telling the watch error handler, so without a probe a stopped
// API server would go unnoticed while nothing changes.
func (d *Discovery) probeLoop(ctx context.Context) {
	t := time.NewTicker(d.probe)
	defer t.Stop()
	for {
		d.probeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeOnce asks the API server for its version, the cheapest request
// every server answers to every authenticated client.
func (d *Discovery) probeOnce(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, max(d.probe, time.Second))
	defer cancel()
	_, err := discovery.ToServerVersionInterfaceWithContext(d.client.Discovery()).ServerVersionWithContext(pctx)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		d.markUnreachable("probe api server: " + redact(err))
		return
	}
	d.markReachable()
}

// markUnreachable records that the API server cannot be reached.
func (d *Discovery) markUnreachable(msg string) {
	d.mu.Lock()
	was := d.health.reachable || d.health.unreachableSince.IsZero()
	d.health.reachable = false
	d.health.reachErr = msg
	if d.health.unreachableSince.IsZero() {
		d.health.unreachableSince = d.now()
	}
	d.mu.Unlock()
	if was {
		d.log.Warn("kubernetes api server unreachable, serving last known endpoints", "error", msg)
		d.notify()
	}
}

// markReachable records a successful request and forgets watch errors of
// informers that have listed since they failed.
func (d *Discovery) markReachable() {
	d.mu.Lock()
	was := d.health.reachable
	since := d.health.unreachableSince
	d.health.reachable = true
	d.health.reachErr = ""
	d.health.unreachableSince = time.Time{}
	for k, w := range d.health.watchErrs {
		if w.inf.LastSyncResourceVersion() != w.rv {
			delete(d.health.watchErrs, k)
		}
	}
	d.mu.Unlock()
	if !was {
		if since.IsZero() {
			d.log.Info("kubernetes api server reachable")
		} else {
			d.log.Info("kubernetes api server reachable again", "after", d.now().Sub(since).Round(time.Millisecond))
		}
		d.notify()
	}
}

// userinfo matches credentials embedded in a URL (https://user:pass@host).
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s"]+@`)

// redact returns err's text without URL credentials. Bearer tokens travel
// in headers and never appear in client-go's errors; URL userinfo can.
func redact(err error) string {
	return userinfo.ReplaceAllString(err.Error(), "$1")
}
