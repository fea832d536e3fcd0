package render

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/gitmesh/gitmesh/schema/model"
)

// decorate adds what a route carries besides its match and action: header
// edits and the per-route fault override. Proxyless clients ignore header
// edits, so they are rendered for Envoy flavours only.
func (b *builder) decorate(rc routeCtx, route *routev3.Route, r *model.Route, path string) {
	if r.Fault != nil {
		route.TypedPerFilterConfig = map[string]*anypb.Any{
			filterFault: b.pack(path+".fault", b.faultConfig(path+".fault", r.Fault)),
		}
	}
	if r.Headers == nil || rc.fl == flavourGRPC {
		return
	}
	if ops := r.Headers.Request; ops != nil {
		route.RequestHeadersToAdd = headerOptions(ops)
		route.RequestHeadersToRemove = sortedCopy(ops.Remove)
	}
	if ops := r.Headers.Response; ops != nil {
		route.ResponseHeadersToAdd = headerOptions(ops)
		route.ResponseHeadersToRemove = sortedCopy(ops.Remove)
	}
}

// headerOptions renders set (overwrite) then add (append), each sorted by
// header name so output never follows map order.
func headerOptions(ops *model.HeaderOps) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, k := range sortedMapKeys(ops.Set) {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: ops.Set[k]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, k := range sortedMapKeys(ops.Add) {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: k, Value: ops.Add[k]},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

func sortedMapKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedCopy keeps removals in a stable order without touching the model.
func sortedCopy(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}
