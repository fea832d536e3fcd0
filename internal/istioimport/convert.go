package istioimport

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gitmesh/gitmesh/schema/model"
)

// Options are the facts the Istio YAML does not carry.
type Options struct {
	// Namespace is the namespace of objects whose metadata names none
	// (kubectl's default namespace): "default" when empty.
	Namespace string
	// RootNamespace is Istio's configuration root namespace: a
	// PeerAuthentication or AuthorizationPolicy without selector there
	// applies to the whole mesh. "istio-system" when empty.
	RootNamespace string
	// TrustDomain is the SPIFFE trust domain; "cluster.local" when empty.
	TrustDomain string
	// ClusterDomain is the DNS suffix of Kubernetes service hosts
	// (NAME.NS.svc.DOMAIN); "cluster.local" when empty.
	ClusterDomain string
	// MeshName names the mesh (mesh.name); "mesh" when empty.
	MeshName string
	// DefaultPort is the port of a service whose ports nothing in the
	// input names (no Kubernetes Service, no destination port): 80 when 0.
	DefaultPort int
}

func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.RootNamespace == "" {
		o.RootNamespace = "istio-system"
	}
	if o.TrustDomain == "" {
		o.TrustDomain = "cluster.local"
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = "cluster.local"
	}
	if o.MeshName == "" {
		o.MeshName = "mesh"
	}
	if o.DefaultPort == 0 {
		o.DefaultPort = 80
	}
	return o
}

// Source is one input file.
type Source struct {
	// Name is how report lines name the file.
	Name string
	// Data is its content: one or more YAML documents.
	Data []byte
}

// Result is a converted repository and what the conversion lost.
type Result struct {
	// Files maps repository paths ("services/reviews.cue") to content.
	Files map[string][]byte
	// Report lists every field dropped or approximated, sorted.
	Report Report
	// Converted counts the Istio and Kubernetes objects that contributed
	// to the output; 0 means nothing could be converted.
	Converted int
	// Tests counts the generated traffic tests.
	Tests int
}

// object is one Kubernetes-style object of the input.
type object struct {
	kind, apiVersion string
	name, namespace  string
	root, spec       node
	rep              reporter
}

// converter holds the state of one Convert call.
type converter struct {
	opts   Options
	report Report
	mesh   *model.Mesh
	// svc holds what the converter knows about each service beyond the
	// model: where its facts came from.
	svc map[string]*svcInfo
	// origins lists, per output file, the Istio objects it came from.
	origins   map[string][]origin
	converted map[*object]bool
	// routeSrc is the Istio route each model route came from, by
	// "services/NAME" or "gateways/NAME" and index, for test names and
	// report lines.
	routeSrc map[string][]routeSource
	// peerAuths wait for applyPolicies (Istio's precedence needs all).
	peerAuths []peerAuth
	// routedBy is the first VirtualService that routed each service.
	routedBy map[string]*object
	// sidecars wait for applySidecars (Istio's precedence needs all).
	sidecars []sidecarScope
	// allowNothing are services an ALLOW policy without rules selects.
	allowNothing map[string]*object
}

// svcInfo is what the converter learnt about a service.
type svcInfo struct {
	// selector are the labels of the service's workloads (the Kubernetes
	// Service's selector, else the Istio convention app: NAME).
	selector map[string]string
	// fromK8s says a Kubernetes Service declared the ports.
	fromK8s bool
	// portsSeen are port numbers named by routes and destination rules,
	// in order, for services without a Kubernetes Service.
	portsSeen []int
	// first is where the service was first named.
	first node
	rep   reporter
}

// Convert turns Istio networking and security YAML into a gitmesh
// repository. Problems with the input are report lines, never errors: an
// object that cannot be converted is skipped and said so.
func Convert(srcs []Source, opts Options) *Result {
	opts = opts.withDefaults()
	c := &converter{
		opts: opts,
		// The domains are set so that the model's own Host and SPIFFEID
		// name services and identities as gitmesh will.
		mesh: &model.Mesh{Mesh: model.MeshConfig{TrustDomain: opts.TrustDomain, ClusterDomain: opts.ClusterDomain},
			Services: map[string]*model.Service{}, Gateways: map[string]*model.Gateway{},
			External: map[string]*model.External{}},
		svc: map[string]*svcInfo{}, origins: map[string][]origin{},
		converted: map[*object]bool{}, routeSrc: map[string][]routeSource{}, allowNothing: map[string]*object{}, routedBy: map[string]*object{},
	}
	objs := c.read(srcs)
	// The order matters: Kubernetes Services give ports and selectors
	// before anything names a service, and workloads their identities; ServiceEntries and Gateways exist
	// before hosts and gateway names are resolved; destination rules
	// create versions before routes name them as subsets; policies come
	// last, when every service they may select exists.
	for _, pass := range []struct {
		kind string
		f    func(*object)
	}{
		{"Service", c.k8sService},
		{"Deployment", c.workload},
		{"StatefulSet", c.workload},
		{"DaemonSet", c.workload},
		{"ServiceEntry", c.serviceEntry},
		{"Gateway", c.gateway},
		{"DestinationRule", c.destinationRule},
		{"VirtualService", c.virtualService},
		{"PeerAuthentication", c.peerAuthentication},
		{"AuthorizationPolicy", c.authorizationPolicy},
		{"Sidecar", c.sidecar},
	} {
		for _, o := range objs {
			if o.kind == pass.kind {
				pass.f(o)
			}
		}
	}
	c.finishServices()
	c.fixPorts()
	c.applyPolicies()
	c.finishAuthorization()
	c.applySidecars()
	for _, o := range objs {
		if kinds[o.kind] != "" && kinds[o.kind] != "apps" {
			o.spec.unread(func(n node) {
				o.rep.add(n, Dropped, "%s", reason(n.path))
			})
		}
	}
	res := &Result{}
	tests := c.generateTests()
	res.Tests = len(tests)
	res.Files = c.emit(tests)
	for _, o := range objs {
		if c.converted[o] {
			res.Converted++
		}
	}
	c.report.sort()
	res.Report = c.report
	return res
}

// read parses every source into objects, expanding List kinds, and
// reports documents that are not objects gitmesh converts.
func (c *converter) read(srcs []Source) []*object {
	var objs []*object
	for _, s := range srcs {
		docs, err := readDocuments(s.Name, s.Data)
		if err != nil {
			pos := model.Pos{File: s.Name, Line: err.line}
			if pos.Line > 0 {
				pos.Col = 1
			}
			c.report = append(c.report, Finding{Pos: pos, Kind: Skipped,
				Message: fmt.Sprintf("YAML syntax error, the rest of the file is not read: %s", err.msg)})
		}
		for _, d := range docs {
			objs = append(objs, c.objects(d.root)...)
		}
	}
	return objs
}

// kinds maps the kinds converted to the API groups they may come from.
var kinds = map[string]string{
	"VirtualService":      "networking.istio.io",
	"DestinationRule":     "networking.istio.io",
	"Gateway":             "networking.istio.io",
	"ServiceEntry":        "networking.istio.io",
	"PeerAuthentication":  "security.istio.io",
	"AuthorizationPolicy": "security.istio.io",
	"Sidecar":             "networking.istio.io",
	"Service":             "",
	"Deployment":          "apps",
	"StatefulSet":         "apps",
	"DaemonSet":           "apps",
}

// apiVersions are the Istio API versions read; the fields converted mean the same
// in all of them.
var apiVersions = map[string]bool{"v1": true, "v1beta1": true, "v1alpha3": true}

func (c *converter) objects(root node) []*object {
	kind := root.get("kind").str()
	apiVersion := root.get("apiVersion").str()
	if kind == "List" || strings.HasSuffix(kind, "List") && root.has("items") {
		var out []*object
		for _, it := range root.get("items").list() {
			out = append(out, c.objects(it)...)
		}
		return out
	}
	meta := root.get("metadata")
	o := &object{kind: kind, apiVersion: apiVersion, name: meta.get("name").str(), namespace: meta.get("namespace").str(), root: root}
	if o.namespace == "" {
		o.namespace = c.opts.Namespace
	}
	o.rep = reporter{out: &c.report, object: kind + " " + o.namespace + "/" + o.name}
	group, version, _ := strings.Cut(apiVersion, "/")
	if version == "" {
		group, version = "", group
	}
	want, known := kinds[kind]
	switch {
	case kind == "":
		c.report = append(c.report, Finding{Pos: root.pos(), Kind: Skipped, Message: "not a Kubernetes object (no kind)"})
		return nil
	case !known || group != want:
		c.report = append(c.report, Finding{Pos: root.pos(), Object: o.rep.object, Kind: Skipped,
			Message: fmt.Sprintf("kind %q of %q is not converted (gitmesh reads networking.istio.io VirtualService, DestinationRule, Gateway, ServiceEntry, Sidecar, security.istio.io PeerAuthentication, AuthorizationPolicy; Kubernetes Services for ports, Deployments, StatefulSets and DaemonSets for service accounts)", kind, apiVersion)})
		return nil
	case strings.HasSuffix(want, "istio.io") && !apiVersions[version]:
		c.report = append(c.report, Finding{Pos: root.pos(), Object: o.rep.object, Kind: Skipped,
			Message: fmt.Sprintf("API version %q is not read (want v1, v1beta1 or v1alpha3)", apiVersion)})
		return nil
	case o.name == "":
		c.report = append(c.report, Finding{Pos: root.pos(), Object: kind, Kind: Skipped, Message: "no metadata.name"})
		return nil
	}
	o.spec = root.get("spec")
	if !o.spec.ok() {
		o.spec = node{file: root.file, path: "spec", read: root.read}
	}
	return []*object{o}
}

// nameRE is gitmesh's #Name: a DNS label.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// dnsName makes s a #Name: lower case, other characters to '-'.
func dnsName(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, ch := range b {
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-")
}

// origin records that the Istio object o contributed to file.
func (c *converter) origin(file string, o *object) {
	s := origin{pos: o.root.pos(), text: fmt.Sprintf("%s %s (%s)", o.kind, o.namespace+"/"+o.name, o.root.pos())}
	if !slices.Contains(c.origins[file], s) {
		c.origins[file] = append(c.origins[file], s)
	}
	c.converted[o] = true
}

// origin is an input object an output file came from.
type origin struct {
	pos  model.Pos
	text string
}

// routeSource is the Istio route a model route came from.
type routeSource struct {
	n   node
	rep reporter
}
