package kube

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitmesh/gitmesh/schema/model"
)

// mapView is a view over plain values, so the mapping rules can be tested
// case by case without an API server (the informer side is tested against
// a real one in discovery_test.go).
type mapView struct {
	namespaces []string // nil: all
	services   []string // "ns/name"
	slices     []*discoveryv1.EndpointSlice
	pods       map[string]map[string]string // "ns/name" → labels
	clusterIPs map[string][]string          // "ns/name" → spec.clusterIPs
}

func (v mapView) watched(ns string) bool {
	if v.namespaces == nil {
		return true
	}
	for _, n := range v.namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

func (v mapView) service(ns, name string) *corev1.Service {
	for _, s := range v.services {
		if s == ns+"/"+name {
			return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: corev1.ServiceSpec{ClusterIPs: v.clusterIPs[s]}}
		}
	}
	return nil
}

func (v mapView) slicesOf(ns, name string) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, s := range v.slices {
		if s.Namespace == ns && s.Labels[discoveryv1.LabelServiceName] == name {
			out = append(out, s)
		}
	}
	return out
}

func (v mapView) podLabels(ns, name string) map[string]string { return v.pods[ns+"/"+name] }

func ptr[T any](v T) *T { return &v }

// slice builds an EndpointSlice of service svc in ns "shop".
func slice(name, svc string, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       ports,
		Endpoints:   eps,
	}
}

// ep builds an endpoint of pod (in "shop") with a ready condition.
func ep(pod string, ready *bool, addrs ...string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: addrs, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	if pod != "" {
		e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Name: pod}
	}
	return e
}

func port(name string, n int32) discoveryv1.EndpointPort {
	p := discoveryv1.EndpointPort{Port: ptr(n)}
	if name != "" {
		p.Name = ptr(name)
	}
	return p
}

// meshOf builds a mesh of one kubernetes-discovered service "reviews" in
// "shop" with the given ports and versions.
func meshOf(ports []model.Port, versions map[string]map[string]string) *model.Mesh {
	s := &model.Service{Name: "reviews", Namespace: "shop", Discovery: "kubernetes", Ports: ports,
		Versions: map[string]*model.Version{}}
	for v, l := range versions {
		s.Versions[v] = &model.Version{Name: v, Labels: l}
	}
	static := &model.Service{Name: "static", Namespace: "shop", Discovery: "static",
		Versions: map[string]*model.Version{"v1": {Name: "v1"}}}
	return &model.Mesh{Services: map[string]*model.Service{"reviews": s, "static": static}}
}

var (
	httpPort  = []model.Port{{Name: "http", Number: 9080, Protocol: model.ProtocolHTTP}}
	twoPorts  = []model.Port{{Name: "http", Number: 80, TargetPort: 8080, Protocol: model.ProtocolHTTP}, {Name: "grpc", Number: 90, Protocol: model.ProtocolGRPC}}
	byVersion = map[string]map[string]string{"v1": {"version": "v1"}, "v2": {"version": "v2"}}
	pods      = map[string]map[string]string{
		"shop/r1": {"app": "reviews", "version": "v1"},
		"shop/r2": {"app": "reviews", "version": "v2"},
		"shop/r3": {"app": "reviews", "version": "v3"},
	}
)

func TestResolve(t *testing.T) {
	all := []string{"shop/reviews"}
	for _, tc := range []struct {
		name string
		mesh *model.Mesh
		view mapView
		want Resolution
	}{{
		name: "versions by pod labels, ports by name",
		mesh: meshOf(twoPorts, byVersion),
		view: mapView{services: all, pods: pods, slices: []*discoveryv1.EndpointSlice{
			slice("a", "reviews", []discoveryv1.EndpointPort{port("http", 8080), port("grpc", 9090)},
				ep("r2", nil, "10.0.0.2"), ep("r1", ptr(true), "10.0.0.1"), ep("r3", ptr(true), "10.0.0.3")),
		}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{
				"reviews/v1": {{Address: "10.0.0.1", Ports: map[string]int{"grpc": 9090}}},
				"reviews/v2": {{Address: "10.0.0.2", Ports: map[string]int{"grpc": 9090}}},
			},
			Unmatched: map[string]int{"reviews": 1},
		},
	}, {
		name: "not ready and terminating excluded, duplicates across slices once, other ports kept, sorted",
		mesh: meshOf(httpPort, byVersion),
		view: mapView{services: all, pods: pods, slices: []*discoveryv1.EndpointSlice{
			slice("b", "reviews", []discoveryv1.EndpointPort{port("http", 9999)}, ep("r1", nil, "10.0.0.1")),
			slice("c", "reviews", []discoveryv1.EndpointPort{port("http", 9080)}, ep("r1", nil, "10.0.0.9")),
			slice("a", "reviews", []discoveryv1.EndpointPort{port("http", 9080)},
				ep("r1", nil, "10.0.0.9", "10.0.0.1"), ep("r1", ptr(false), "10.0.0.5"),
				discoveryv1.Endpoint{Addresses: []string{"10.0.0.6"}, TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "r1"},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Terminating: ptr(true)}}),
		}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{
				"reviews/v1": {{Address: "10.0.0.1"}, {Address: "10.0.0.1", Ports: map[string]int{"http": 9999}}, {Address: "10.0.0.9"}},
				"reviews/v2": {},
			},
			Unmatched: map[string]int{},
		},
	}, {
		name: "single unlabelled version takes all, lone unnamed slice port",
		mesh: meshOf(httpPort, map[string]map[string]string{"stable": nil}),
		view: mapView{services: all, slices: []*discoveryv1.EndpointSlice{
			slice("a", "reviews", []discoveryv1.EndpointPort{port("", 8000)}, ep("", nil, "10.0.0.7"), ep("gone", nil, "10.0.0.8")),
			slice("other", "ratings", nil, ep("", nil, "10.9.9.9")),
		}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/stable": {
				{Address: "10.0.0.7", Ports: map[string]int{"http": 8000}},
				{Address: "10.0.0.8", Ports: map[string]int{"http": 8000}},
			}},
			Unmatched: map[string]int{},
		},
	}, {
		name: "no Service and no slices: empty keys, reported missing",
		mesh: meshOf(httpPort, byVersion),
		view: mapView{},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}},
			Unmatched: map[string]int{}, Missing: []string{"reviews"},
		},
	}, {
		name: "namespace not watched",
		mesh: meshOf(httpPort, byVersion),
		view: mapView{namespaces: []string{"other"}, services: all, slices: []*discoveryv1.EndpointSlice{
			slice("a", "reviews", nil, ep("r1", nil, "10.0.0.1")),
		}, pods: pods},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}},
			Unmatched: map[string]int{}, Missing: []string{"reviews"},
		},
	}, {
		name: "ClusterIPs become the service's addresses",
		mesh: meshOf(httpPort, byVersion),
		view: mapView{services: all, clusterIPs: map[string][]string{"shop/reviews": {"10.96.0.12", "fd00::c"}}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}},
			Unmatched: map[string]int{},
			Addresses: map[string][]string{"reviews": {"10.96.0.12", "fd00::c"}},
		},
	}, {
		name: "headless Service: no addresses",
		mesh: meshOf(httpPort, byVersion),
		view: mapView{services: all, clusterIPs: map[string][]string{"shop/reviews": {"None"}}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}},
			Unmatched: map[string]int{},
		},
	}, {
		name: "declared addresses win over ClusterIPs",
		mesh: func() *model.Mesh {
			m := meshOf(httpPort, byVersion)
			m.Services["reviews"].Addresses = []string{"10.200.0.1"}
			return m
		}(),
		view: mapView{services: all, clusterIPs: map[string][]string{"shop/reviews": {"10.96.0.12"}}},
		want: Resolution{
			Endpoints: map[string][]model.Endpoint{"reviews/v1": {}, "reviews/v2": {}},
			Unmatched: map[string]int{},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := resolve(tc.mesh, tc.view)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("resolve (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	err := errorString(`Get "https://admin:s3cret@10.0.0.1:6443/version": dial tcp: connection refused`)
	got := redact(err)
	want := `Get "https://10.0.0.1:6443/version": dial tcp: connection refused`
	if got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
