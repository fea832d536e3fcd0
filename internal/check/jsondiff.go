package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The generic diff compares two resources as JSON trees (protojson with
// proto field names, as Envoy's config dump shows them) and prints
// "field.path: old → new". It is the fallback for every field the semantic
// diffs do not know, so no change is ever silently left out; bounds keep a
// large change from flooding a PR comment.
const (
	// maxLines bounds the lines of one resource's diff.
	maxLines = 25
	// maxValue bounds one printed value.
	maxValue = 80
)

// lines collects the diff lines of one resource, counting those over the
// bound so the reader knows something was left out.
type lines struct {
	out     []string
	dropped int
}

func (l *lines) add(format string, a ...any) {
	if len(l.out) >= maxLines {
		l.dropped++
		return
	}
	l.out = append(l.out, fmt.Sprintf(format, a...))
}

func (l *lines) result() []string {
	if l.dropped > 0 {
		return append(l.out, fmt.Sprintf("… and %d more changes", l.dropped))
	}
	return l.out
}

// parseJSON decodes protojson output keeping numbers as written.
func parseJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// genericDiff appends a line for every leaf that differs between a and b
// (nil meaning absent) below path.
func genericDiff(l *lines, path string, a, b any) {
	if jsonEqual(a, b) {
		return
	}
	switch {
	case a == nil:
		l.add("%s: added %s", label(path), show(b))
		return
	case b == nil:
		l.add("%s: removed (was %s)", label(path), show(a))
		return
	}
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		for _, k := range unionSorted(mapKeys(am), mapKeys(bm)) {
			genericDiff(l, join(path, k), am[k], bm[k])
		}
		return
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok {
		listDiff(l, path, as, bs)
		return
	}
	l.add("%s: %s → %s", label(path), show(a), show(b))
}

// listDiff matches list elements by their "name" when every element has a
// distinct one (listeners' filter chains, route config's virtual hosts),
// since a name is stable when elements are inserted; else by index.
func listDiff(l *lines, path string, a, b []any) {
	an, aok := byName(a)
	bn, bok := byName(b)
	if aok && bok {
		order := []string{}
		seen := map[string]bool{}
		for _, s := range [][]any{b, a} {
			for _, e := range s {
				n := e.(map[string]any)["name"].(string)
				if !seen[n] {
					seen[n] = true
					order = append(order, n)
				}
			}
		}
		for _, n := range order {
			genericDiff(l, path+"["+n+"]", an[n], bn[n])
		}
		return
	}
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y any
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		genericDiff(l, fmt.Sprintf("%s[%d]", path, i), x, y)
	}
}

func byName(s []any) (map[string]any, bool) {
	m := make(map[string]any, len(s))
	for _, e := range s {
		o, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		n, ok := o["name"].(string)
		if !ok || n == "" {
			return nil, false
		}
		if _, dup := m[n]; dup {
			return nil, false
		}
		m[n] = o
	}
	return m, len(s) > 0
}

func jsonEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// show prints a value compactly, cut to maxValue runes.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if r := []rune(s); len(r) > maxValue {
		s = string(r[:maxValue-1]) + "…"
	}
	return s
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pathLabels shorten the deep paths of common Envoy structures to the words
// operators use for them.
var pathLabels = []struct{ from, to string }{
	{".filters[envoy.filters.network.http_connection_manager].typed_config", " HCM"},
	{".filters[envoy.filters.network.tcp_proxy].typed_config", " tcp_proxy"},
	{"transport_socket.typed_config.common_tls_context.", "TLS "},
	{"transport_socket.typed_config.", "TLS "},
	{"circuit_breakers.thresholds[0].", "circuit breakers "},
	{"endpoints[0].load_balancing_weight", "locality weight"},
	{"outlier_detection.", "outlier detection "},
	{".typed_config.", "."},
}

func label(path string) string {
	for _, p := range pathLabels {
		path = strings.ReplaceAll(path, p.from, p.to)
	}
	return path
}

// field and del navigate and prune decoded JSON objects; they tolerate
// missing or mistyped nodes, since a field absent at its default is normal.
func field(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func obj(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func list(v any) []any {
	s, _ := v.([]any)
	return s
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return show(v)
}
