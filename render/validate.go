package render

import (
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/internal/nodeid"
	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/render/envoystrict"
	"github.com/gitmesh/gitmesh/schema/model"
)

// Render's finding codes (GM08xx). They are stable: CI filters on them.
// The table is envoystrict's (render/envoystrict/codes.go), which owns the
// load-time rules; render reports the same codes for what it finds while
// building.
const (
	CodeUnresolved      = envoystrict.CodeUnresolved
	CodeInvalidResource = envoystrict.CodeInvalidResource
	CodeDangling        = envoystrict.CodeDangling
	CodeSecret          = envoystrict.CodeSecret
	CodeFilterOrder     = envoystrict.CodeFilterOrder
	CodeWeights         = envoystrict.CodeWeights
	CodeTimeout         = envoystrict.CodeTimeout
	CodeInvalidValue    = envoystrict.CodeInvalidValue
	CodeUnsupported     = envoystrict.CodeUnsupported
	CodeConflict        = envoystrict.CodeConflict
)

// validate is render's self-check, run on every bundle before it is
// returned, so validate, check and serve all get it. Two passes:
//
//  1. every distinct resource once through the generated ValidateAll
//     (protoc-gen-validate's field rules);
//  2. every checked proxy class through envoystrict, the rules Envoy
//     applies when it loads a config that ValidateAll cannot see (across
//     resources, inside Any, semantic). Layers and resources shared by
//     many classes are walked once.
func (b *builder) validate() {
	for _, px := range b.checked {
		if l := px.shared; l != nil && l.strict == nil {
			l.strict = b.strictSet(l.byType)
		}
	}
	captures := b.captures()
	opt := envoystrict.Options{
		Pos: b.m.Sources.Lookup,
		Unpack: func(a *anypb.Any) proto.Message {
			return b.packed[a]
		},
		RoutePath:    func(rt *routev3.Route) string { return b.routeOrigin[rt] },
		RefPath:      func(name string) string { return b.refOrigin[name] },
		SecretServed: b.secretServed,
	}
	if b.inc != nil {
		opt.Memo = b.inc.strict
	}
	c := envoystrict.New(opt)
	for _, px := range b.checked {
		cl := envoystrict.Class{Name: px.Class, Own: b.strictSet(px.own), Capture: captures[px.Class]}
		if px.shared != nil {
			cl.Shared = px.shared.strict
		}
		c.Check(cl)
	}
	b.diags = append(b.diags, c.Diagnostics()...)
}

// strictSet is a sorted resource map as envoystrict sees it, each
// resource validated (ValidateAll) and converted once.
func (b *builder) strictSet(byType map[string][]*Resource) *envoystrict.Set {
	out := make(map[string][]*envoystrict.Resource, len(byType))
	for _, t := range snapshot.Rendered() {
		rs := byType[t]
		if len(rs) == 0 {
			continue
		}
		list := make([]*envoystrict.Resource, len(rs))
		for i, r := range rs {
			if r.strict == nil {
				b.checkResource(r)
				r.strictVal = envoystrict.Resource{TypeURL: r.typeURL, Name: r.Name, Message: r.Message, Path: r.origin}
				r.strict = &r.strictVal
			}
			list[i] = r.strict
		}
		out[t] = list
	}
	return envoystrict.NewSet(out)
}

// checkResource runs the generated validation of one resource.
func (b *builder) checkResource(r *Resource) {
	if rc, ok := r.Message.(*routev3.RouteConfiguration); ok {
		b.validateRouteConfig(r, rc)
	} else if v, ok := r.Message.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			b.errorf(CodeInvalidResource, r.origin, "%s %q: %v", snapshot.Noun(r.typeURL), r.Name, err)
		}
	}
}

// validateRouteConfig runs the generated validation of a route config with
// each distinct virtual host validated once: sidecar route configs embed
// the same (shared, memoised) virtual hosts, and validating their domains is
// the costliest part of ValidateAll at scale. The config's own fields are
// validated with its virtual hosts detached for the call (render is single
// threaded and the message is not yet published).
func (b *builder) validateRouteConfig(r *Resource, rc *routev3.RouteConfiguration) {
	vhs := rc.VirtualHosts
	rc.VirtualHosts = nil
	err := rc.ValidateAll()
	rc.VirtualHosts = vhs
	if err != nil {
		b.errorf(CodeInvalidResource, r.origin, "%s %q: %v", snapshot.Noun(r.typeURL), r.Name, err)
	}
	for _, vh := range vhs {
		if b.validVHost[vh] {
			continue
		}
		b.validVHost[vh] = true
		if err := vh.ValidateAll(); err != nil {
			b.errorf(CodeInvalidResource, r.origin, "%s %q: virtual host %q: %v", snapshot.Noun(r.typeURL), r.Name, vh.Name, err)
		}
	}
}

// captures is what the traffic capture of each sidecar class redirects,
// from the model: outbound, every port of every service and external the
// service depends on (at its VIP, when the model has one; at 0.0.0.0
// otherwise); inbound, the service's target ports on virtualInbound.
// envoystrict holds a class's resources to it only once the class has
// capture listeners (rule_original_dst.go). The outbound list depends on
// the namespace and dependency set only, like the outbound layer, so it is
// built once per layer and shared: envoystrict resolves it against the
// layer once, not once per class.
func (b *builder) captures() map[string]*envoystrict.Capture {
	out := map[string]*envoystrict.Capture{}
	outbound := map[string][]envoystrict.Destination{}
	// perService is one dependency's destinations, which every caller of
	// it lists: built once per service, not once per caller.
	perService := map[*model.Service][]envoystrict.Destination{}
	for _, name := range b.ix.serviceNames {
		s := b.m.Services[name]
		vs := b.ix.versionNames(s)
		if (s.Proxy != model.ProxySidecar && s.Proxy != "") || len(vs) == 0 {
			continue
		}
		cp := &envoystrict.Capture{InboundListener: VirtualInbound, InboundPorts: make([]envoystrict.Port, 0, len(s.Ports))}
		base := b.svcPath(s.Name, "ports")
		for i := range s.Ports {
			cp.InboundPorts = append(cp.InboundPorts, envoystrict.Port{
				Port: uint32(s.Ports[i].Target()),
				Path: model.Index(base, i),
			})
		}
		d := b.ix.depsOf(s)
		key := b.ix.outboundKey(s)
		dests, ok := outbound[key]
		if !ok {
			for _, t := range d.services {
				td, ok := perService[t]
				if !ok {
					vips := b.captureAddresses(t)
					base := b.svcPath(t.Name, "ports")
					for i := range t.Ports {
						path := model.Index(base, i)
						for _, vip := range vips {
							td = append(td, envoystrict.Destination{Address: vip, Port: uint32(t.Ports[i].Number), Path: path})
						}
					}
					perService[t] = td
				}
				dests = append(dests, td...)
			}
			for _, e := range d.externals {
				for i := range e.Ports {
					dests = append(dests, envoystrict.Destination{Port: uint32(e.Ports[i].Number), Path: model.Index(model.Path("external", e.Name, "ports"), i)})
				}
			}
			outbound[key] = dests
		}
		cp.Outbound = dests
		out[nodeid.Sidecar(s.Namespace, s.Name, vs[0])] = cp
	}
	return out
}

// captureAddresses are the addresses an application reaches service t
// at: its VIPs (model.Mesh.VIPs: declared, discovered or allocated), or
// "" (any address) when it has none.
func (b *builder) captureAddresses(t *model.Service) []string {
	if vips := b.ix.addresses(t); len(vips) > 0 {
		return vips
	}
	return []string{""}
}

// secretServed reports whether an SDS name will be served: the workload's
// own pair, or a gateway credential (and its "-cacert") that the input says
// exists (any, when Input.Credentials is nil).
func (b *builder) secretServed(name string) bool {
	if name == SecretDefault || name == SecretRootCA {
		return true
	}
	cred := strings.TrimSuffix(name, "-cacert")
	if b.in.Credentials != nil {
		return b.in.Credentials[cred]
	}
	for _, gn := range b.m.GatewayNames() {
		for _, l := range b.m.Gateways[gn].Listeners {
			if l.TLS != nil && l.TLS.CredentialName == cred {
				return true
			}
		}
	}
	return false
}
