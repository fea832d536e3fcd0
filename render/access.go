package render

import (
	"sort"

	"google.golang.org/protobuf/types/known/anypb"
)

// Any wraps the resource's deterministic bytes for xDS without marshalling
// again: the server sends exactly what render hashed.
func (r *Resource) Any() *anypb.Any { return &anypb.Any{TypeUrl: r.typeURL, Value: r.bytes} }

// Types returns the type URLs the proxy has resources of, sorted.
func (p *Proxy) Types() []string {
	types := make([]string, 0, len(p.byType))
	for t, rs := range p.byType {
		if len(rs) > 0 {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	return types
}
