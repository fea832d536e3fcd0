package kube

import (
	"cmp"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Service is a Kubernetes Service as discovery sees it, for status and
// drift reports: it lists Services whether or not Git declares them.
type Service struct {
	Namespace string
	Name      string
	Ports     []ServicePort
	// ReadyEndpoints counts the distinct ready addresses in its slices.
	ReadyEndpoints int
}

// ServicePort is one port of a Kubernetes Service.
type ServicePort struct {
	Name string
	Port int
	// TargetPort is a number or a container port name, as written.
	TargetPort string
	Protocol   string
}

// Services returns every Kubernetes Service in the watched namespaces,
// sorted by namespace and name. It reads the caches only.
func (d *Discovery) Services() []Service {
	v := cacheView{d}
	var out []Service
	for _, s := range d.scopes {
		for _, obj := range s.services.GetStore().List() {
			svc, ok := obj.(*corev1.Service)
			if !ok {
				continue
			}
			out = append(out, Service{
				Namespace:      svc.Namespace,
				Name:           svc.Name,
				Ports:          servicePorts(svc),
				ReadyEndpoints: readyAddresses(v.slicesOf(svc.Namespace, svc.Name)),
			})
		}
	}
	slices.SortFunc(out, func(a, b Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// servicePorts copies a Service's ports.
func servicePorts(svc *corev1.Service) []ServicePort {
	out := make([]ServicePort, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, ServicePort{
			Name: p.Name, Port: int(p.Port), TargetPort: p.TargetPort.String(), Protocol: string(p.Protocol),
		})
	}
	return out
}

// readyAddresses counts distinct ready addresses over slices.
func readyAddresses(sl []*discoveryv1.EndpointSlice) int {
	seen := map[string]bool{}
	for _, s := range sl {
		for _, ep := range s.Endpoints {
			if ready(ep) {
				for _, a := range ep.Addresses {
					seen[a] = true
				}
			}
		}
	}
	return len(seen)
}

// cacheView is the view over a Discovery's informer caches.
type cacheView struct{ d *Discovery }

func (c cacheView) watched(ns string) bool { return c.d.scopeFor(ns) != nil }

func (c cacheView) service(ns, name string) *corev1.Service {
	s := c.d.scopeFor(ns)
	if s == nil {
		return nil
	}
	obj, ok, err := s.services.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	svc, _ := obj.(*corev1.Service)
	return svc
}

func (c cacheView) slicesOf(ns, name string) []*discoveryv1.EndpointSlice {
	s := c.d.scopeFor(ns)
	if s == nil {
		return nil
	}
	objs, err := s.slices.GetIndexer().ByIndex(serviceIndex, ns+"/"+name)
	if err != nil {
		return nil
	}
	out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
	for _, o := range objs {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, sl)
		}
	}
	return out
}

func (c cacheView) podLabels(ns, name string) map[string]string {
	s := c.d.scopeFor(ns)
	if s == nil {
		return nil
	}
	obj, ok, err := s.pods.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	if p, ok := obj.(*corev1.Pod); ok {
		return p.Labels
	}
	return nil
}
