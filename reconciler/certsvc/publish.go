package certsvc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Publishing the trust bundle. An agent in token mode must verify
// gitmesh's serving certificate before it sends its token, so it needs the
// mesh's roots before it has anything from gitmesh. As istiod does with
// istio-ca-root-cert, serve keeps a ConfigMap with the bundle in every
// opted-in namespace; the injected pod mounts it at /etc/gitmesh, which
// makes /etc/gitmesh/ca.pem, the agent's default --ca.
const (
	// RootConfigMap is the ConfigMap's name.
	RootConfigMap = "gitmesh-ca-root-cert"
	// RootConfigMapKey is its one key.
	RootConfigMapKey = "ca.pem"
	// DefaultNamespaceSelector selects the opted-in namespaces.
	DefaultNamespaceSelector = "gitmesh.io/inject=enabled"
	fieldManager             = "gitmesh"
)

// PublisherOptions configure a RootPublisher.
type PublisherOptions struct {
	Client kubernetes.Interface
	// Bundle is the current trust bundle (ca.CA.TrustBundle).
	Bundle func() []byte
	// NamespaceSelector is a label selector; "" means
	// DefaultNamespaceSelector.
	NamespaceSelector string
	// Interval is how often the bundle is compared (it changes on a root
	// rotation); 0 means 30 s. Namespace and ConfigMap changes are acted on
	// at once.
	Interval time.Duration
	Logger   *slog.Logger
}

// RootPublisher keeps RootConfigMap current in the selected namespaces.
type RootPublisher struct {
	o   PublisherOptions
	log *slog.Logger
}

// NewRootPublisher returns a publisher; Run starts it.
func NewRootPublisher(o PublisherOptions) *RootPublisher {
	if o.NamespaceSelector == "" {
		o.NamespaceSelector = DefaultNamespaceSelector
	}
	if o.Interval <= 0 {
		o.Interval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &RootPublisher{o: o, log: o.Logger.With("component", "ca-root-publisher")}
}

// Run publishes until ctx ends. Writes are server-side applies of the same
// content by field manager "gitmesh", so every replica may run it.
func (p *RootPublisher) Run(ctx context.Context) {
	nsf := informers.NewSharedInformerFactoryWithOptions(p.o.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = p.o.NamespaceSelector }))
	cmf := informers.NewSharedInformerFactoryWithOptions(p.o.Client, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", RootConfigMap).String()
		}))
	nsInf := nsf.Core().V1().Namespaces().Informer()
	cmInf := cmf.Core().V1().ConfigMaps().Informer()
	kick := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: poke, UpdateFunc: func(_, n any) { poke(n) }, DeleteFunc: poke}
	nsInf.AddEventHandler(h)
	cmInf.AddEventHandler(h)
	nsf.Start(ctx.Done())
	cmf.Start(ctx.Done())
	defer nsf.Shutdown()
	defer cmf.Shutdown()
	cache.WaitForCacheSync(ctx.Done(), nsInf.HasSynced, cmInf.HasSynced)
	tick := time.NewTicker(p.o.Interval)
	defer tick.Stop()
	for {
		p.pass(ctx, nsInf.GetStore(), cmInf.GetStore())
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// pass applies the ConfigMap where it is missing or out of date.
func (p *RootPublisher) pass(ctx context.Context, namespaces, configMaps cache.Store) {
	bundle := p.o.Bundle()
	for _, obj := range namespaces.List() {
		ns, ok := obj.(*corev1.Namespace)
		if !ok || ns.DeletionTimestamp != nil {
			continue
		}
		if cur, ok, _ := configMaps.GetByKey(ns.Name + "/" + RootConfigMap); ok {
			if cm, ok := cur.(*corev1.ConfigMap); ok && bytes.Equal([]byte(cm.Data[RootConfigMapKey]), bundle) {
				continue
			}
		}
		if err := p.apply(ctx, ns.Name, bundle); err != nil {
			if ctx.Err() == nil && !apierrors.IsNotFound(err) {
				p.log.Error("could not publish the trust bundle", "namespace", ns.Name, "err", err)
			}
			continue
		}
		p.log.Info("trust bundle published", "namespace", ns.Name, "configmap", RootConfigMap)
	}
}

func (p *RootPublisher) apply(ctx context.Context, ns string, bundle []byte) error {
	cm := applycorev1.ConfigMap(RootConfigMap, ns).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "gitmesh"}).
		WithData(map[string]string{RootConfigMapKey: string(bundle)})
	_, err := p.o.Client.CoreV1().ConfigMaps(ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	if err != nil {
		return fmt.Errorf("apply configmap %s/%s: %w", ns, RootConfigMap, err)
	}
	return nil
}
