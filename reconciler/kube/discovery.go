package kube

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Options configures a Discovery.
type Options struct {
	// Namespaces limits the watch to these namespaces; empty watches all,
	// which needs cluster-wide list/watch rights.
	Namespaces []string
	// Logger receives state changes (synced, unreachable, reachable again)
	// and client-go's own logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock for Health's times; nil means time.Now.
	Now func() time.Time
	// ProbeInterval is how often the API server is probed for Health;
	// 0 means DefaultProbeInterval.
	ProbeInterval time.Duration
}

// DefaultProbeInterval is the default Options.ProbeInterval: one cheap GET
// /version every few seconds finds an unreachable API server quickly
// without load worth mentioning.
const DefaultProbeInterval = 3 * time.Second

// serviceIndex indexes EndpointSlices by "NAMESPACE/SERVICE", from the
// kubernetes.io/service-name label, so a service's slices are one lookup.
const serviceIndex = "service"

// Discovery watches Kubernetes Services, EndpointSlices and Pods and maps
// them to the endpoints of mesh services with discovery "kubernetes".
// Create it with New, start it with Run; all methods are safe for
// concurrent use.
type Discovery struct {
	client  kubernetes.Interface
	log     *slog.Logger
	now     func() time.Time
	probe   time.Duration
	changed chan struct{}

	// scopes holds one informer set per watched namespace ("" = all).
	scopes    []*scope
	factories []informers.SharedInformerFactory

	mu     sync.Mutex
	health healthState
}

// scope is the informers of one namespace (or of all, when ns is "").
type scope struct {
	ns       string
	services cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
	pods     cache.SharedIndexInformer
}

// New prepares informers for opts.Namespaces; nothing talks to the API
// server until Run.
func New(client kubernetes.Interface, opts Options) *Discovery {
	d := &Discovery{
		client:  client,
		log:     opts.Logger,
		now:     opts.Now,
		probe:   opts.ProbeInterval,
		changed: make(chan struct{}, 1),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.probe <= 0 {
		d.probe = DefaultProbeInterval
	}
	namespaces := slices.Compact(slices.Sorted(slices.Values(opts.Namespaces)))
	if len(namespaces) == 0 || slices.Contains(namespaces, metav1.NamespaceAll) {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0,
			informers.WithNamespace(ns), informers.WithTransform(trim))
		s := &scope{
			ns:       ns,
			services: f.Core().V1().Services().Informer(),
			slices:   f.Discovery().V1().EndpointSlices().Informer(),
			pods:     f.Core().V1().Pods().Informer(),
		}
		// The informers are new and not started, so these cannot fail.
		_ = s.slices.AddIndexers(cache.Indexers{serviceIndex: sliceServiceKey})
		for name, inf := range map[string]cache.SharedIndexInformer{
			"services": s.services, "endpointslices": s.slices, "pods": s.pods,
		} {
			_ = inf.SetWatchErrorHandler(d.watchErrorHandler(name, ns, inf))
			_, _ = inf.AddEventHandler(d.handler(name == "pods"))
		}
		d.scopes = append(d.scopes, s)
		d.factories = append(d.factories, f)
	}
	return d
}

// Run starts the informers and the health probe and blocks until ctx
// ends; then it stops the informers.
func (d *Discovery) Run(ctx context.Context) {
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(d.log.Handler()))
	for _, f := range d.factories {
		f.StartWithContext(ctx)
	}
	var wg sync.WaitGroup
	wg.Go(func() { d.probeLoop(ctx) })
	// Signal Changed once synced even if no caller waits for it and the
	// watched namespaces are empty (then no informer event would).
	wg.Go(func() { d.WaitForSync(ctx) })
	<-ctx.Done()
	for _, f := range d.factories {
		f.Shutdown()
	}
	wg.Wait()
}

// WaitForSync blocks until every informer has listed once (then Endpoints
// reflects the cluster, not an empty cache) or ctx ends; it reports which.
func (d *Discovery) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, s := range d.scopes {
		synced = append(synced, s.services.HasSynced, s.slices.HasSynced, s.pods.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return false
	}
	d.mu.Lock()
	first := !d.health.synced
	d.health.synced = true
	d.mu.Unlock()
	if first {
		d.log.Info("kubernetes discovery synced", "namespaces", d.namespaces())
		d.notify()
	}
	return true
}

// Synced reports whether every informer has listed once, that is whether
// Endpoints reflects the cluster rather than a partial cache. Callers that
// must not drain services on an empty view (the reconciler) check it.
func (d *Discovery) Synced() bool {
	for _, s := range d.scopes {
		if !s.services.HasSynced() || !s.slices.HasSynced() || !s.pods.HasSynced() {
			return false
		}
	}
	return true
}

// Changed signals after any change of a Service, EndpointSlice, a Pod's
// labels or of Health. Signals coalesce (capacity 1): a receiver re-reads
// Endpoints once for a burst of changes, which is the debounce EDS wants.
func (d *Discovery) Changed() <-chan struct{} { return d.changed }

// Endpoints maps the informer caches to render.Input.Endpoints for m; see
// the package doc for the rules. It is Resolve(m).Endpoints. Before
// WaitForSync succeeds the caches may be partial, so callers wait for it
// before serving what Endpoints returns.
func (d *Discovery) Endpoints(m *model.Mesh) map[string][]model.Endpoint {
	return d.Resolve(m).Endpoints
}

// Addresses maps the informer caches to render.Input.Addresses for m:
// the ClusterIPs of m's discovered services that declare no addresses. It
// is Resolve(m).Addresses.
func (d *Discovery) Addresses(m *model.Mesh) map[string][]string {
	return d.Resolve(m).Addresses
}

// Resolve maps the informer caches to endpoints for m and says what did
// not map, for drift reports. It reads the caches only.
func (d *Discovery) Resolve(m *model.Mesh) Resolution {
	return resolve(m, cacheView{d})
}

// notify records an event time and signals Changed without blocking.
func (d *Discovery) notify() {
	d.mu.Lock()
	d.health.lastEvent = d.now()
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// handler signals Changed on every real change. Updates with the same
// resourceVersion are relists after a reconnect, not changes; for Pods
// only labels matter, as they decide versions.
func (d *Discovery) handler(pods bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { d.notify() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			if ok1 && ok2 {
				if o.GetResourceVersion() == n.GetResourceVersion() {
					return
				}
				if pods && maps.Equal(o.GetLabels(), n.GetLabels()) {
					return
				}
			}
			d.notify()
		},
		DeleteFunc: func(any) { d.notify() },
	}
}

// namespaces lists the watched namespaces for logs ("" means all).
func (d *Discovery) namespaces() []string {
	out := make([]string, len(d.scopes))
	for i, s := range d.scopes {
		out[i] = s.ns
	}
	return out
}

// scopeFor returns the informers that cover namespace ns, or nil.
func (d *Discovery) scopeFor(ns string) *scope {
	for _, s := range d.scopes {
		if s.ns == metav1.NamespaceAll || s.ns == ns {
			return s
		}
	}
	return nil
}

// sliceServiceKey is the serviceIndex function.
func sliceServiceKey(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, fmt.Errorf("index %T as an EndpointSlice", obj)
	}
	svc := s.Labels[discoveryv1.LabelServiceName]
	if svc == "" {
		return nil, nil
	}
	return []string{s.Namespace + "/" + svc}, nil
}

// trim drops what discovery never reads before objects enter the caches:
// managed fields everywhere, and everything of a Pod but its name,
// namespace and labels. Pods are the bulk of a cluster; a trimmed Pod is a
// few hundred bytes instead of several kilobytes.
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace, Labels: o.Labels,
			UID: o.UID, ResourceVersion: o.ResourceVersion,
		}}, nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}
