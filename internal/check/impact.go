package check

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/internal/snapshot"
	"github.com/gitmesh/gitmesh/render"
)

// typeNames are the short names of the xDS types in output.
var typeNames = map[string]string{
	resource.ClusterType:  "cluster",
	resource.EndpointType: "endpoints",
	resource.ListenerType: "listener",
	resource.RouteType:    "route",
}

// computeImpact compares what every proxy class receives at base and head.
// Resources are compared by name and version first — versions are content
// hashes, so equal versions mean equal content and cost nothing — and only
// changed ones are diffed, each distinct pair once however many proxies
// share it.
func computeImpact(base, head *Side) Impact {
	switch {
	case head.Bundle == nil:
		return Impact{Note: "head: " + head.RenderNote + "; it would not be pushed", Groups: []Group{}}
	case base.Bundle == nil:
		return Impact{Note: "base: " + base.RenderNote + "; nothing to compare with", Groups: []Group{}}
	}
	d := &differ{cache: map[string][]string{}}
	imp := Impact{Available: true, Groups: []Group{}}
	// counted holds each distinct resource change once, however many
	// classes share it.
	counted := map[string]bool{}
	count := func(kind, typ string, r *render.Resource, from, to string) {
		k := kind + "\x00" + typ + "\x00" + r.Name + "\x00" + from + "\x00" + to
		if counted[k] {
			return
		}
		counted[k] = true
		switch kind {
		case "a":
			imp.Added++
		case "r":
			imp.Removed++
		default:
			imp.Changed++
		}
	}
	byKey := map[string]int{}
	for _, class := range unionSorted(base.Bundle.Classes(), head.Bundle.Classes()) {
		g, changed := classGroup(d, base.Bundle.Proxy(class), head.Bundle.Proxy(class), count)
		if !changed {
			continue
		}
		imp.Proxies++
		// Classes with identical changes share one group: the key is the
		// change itself, rendered once.
		key := groupKey(g)
		if i, ok := byKey[key]; ok {
			imp.Groups[i].Classes = append(imp.Groups[i].Classes, class)
			continue
		}
		g.Classes = []string{class}
		byKey[key] = len(imp.Groups)
		imp.Groups = append(imp.Groups, g)
	}
	return imp
}

// ClassDiff is what changes for one proxy class from base to head (either
// may be nil: the class is added or removed), described as `gitmesh check`
// describes it; changed is false when nothing does. The console shows it
// per proxy for the last revision.
func ClassDiff(base, head *render.Proxy) (g Group, changed bool) {
	d := &differ{cache: map[string][]string{}}
	return classGroup(d, base, head, func(string, string, *render.Resource, string, string) {})
}

// classGroup diffs one class (bp or hp nil when it is added or removed)
// and calls note for every resource added ("a"), removed ("r") or changed
// ("c"), with its old and new versions.
func classGroup(d *differ, bp, hp *render.Proxy, note func(kind, typ string, r *render.Resource, from, to string)) (Group, bool) {
	var g Group
	switch {
	case bp == nil && hp == nil:
		return g, false
	case bp == nil:
		g.Change = "added"
		g.Types = wholeProxy(hp, true)
		for _, t := range snapshot.Rendered() {
			for _, r := range hp.Resources(t) {
				note("a", t, r, "", r.Version)
			}
		}
	case hp == nil:
		g.Change = "removed"
		g.Types = wholeProxy(bp, false)
		for _, t := range snapshot.Rendered() {
			for _, r := range bp.Resources(t) {
				note("r", t, r, r.Version, "")
			}
		}
	case bp.Version() == hp.Version():
		return g, false
	default:
		g.Change = "changed"
		for _, t := range snapshot.Rendered() {
			td := TypeDiff{Type: typeNames[t]}
			olds, news := index(bp.Resources(t)), index(hp.Resources(t))
			for _, name := range unionSorted(slices.Collect(maps.Keys(olds)), slices.Collect(maps.Keys(news))) {
				o, n := olds[name], news[name]
				switch {
				case o == nil:
					td.Added = append(td.Added, name)
					note("a", t, n, "", n.Version)
				case n == nil:
					td.Removed = append(td.Removed, name)
					note("r", t, o, o.Version, "")
				case o.Version != n.Version:
					td.Changed = append(td.Changed, ResourceDiff{Name: name, Lines: d.diff(t, o, n)})
					note("c", t, o, o.Version, n.Version)
				}
			}
			if len(td.Added)+len(td.Removed)+len(td.Changed) > 0 {
				g.Types = append(g.Types, td)
			}
		}
		if len(g.Types) == 0 {
			return g, false
		}
	}
	return g, true
}

// wholeProxy lists every resource of a proxy class that appears or goes.
func wholeProxy(p *render.Proxy, added bool) []TypeDiff {
	var out []TypeDiff
	for _, t := range snapshot.Rendered() {
		names := p.Names(t)
		if len(names) == 0 {
			continue
		}
		td := TypeDiff{Type: typeNames[t]}
		if added {
			td.Added = names
		} else {
			td.Removed = names
		}
		out = append(out, td)
	}
	return out
}

func groupKey(g Group) string {
	var b strings.Builder
	b.WriteString(g.Change)
	for _, t := range g.Types {
		b.WriteString("\x01" + t.Type)
		for _, n := range t.Added {
			b.WriteString("\x02+" + n)
		}
		for _, n := range t.Removed {
			b.WriteString("\x02-" + n)
		}
		for _, c := range t.Changed {
			b.WriteString("\x02~" + c.Name)
			for _, l := range c.Lines {
				b.WriteString("\x03" + l)
			}
		}
	}
	return b.String()
}

func index(rs []*render.Resource) map[string]*render.Resource {
	m := make(map[string]*render.Resource, len(rs))
	for _, r := range rs {
		m[r.Name] = r
	}
	return m
}

// unionSorted merges two name lists into one sorted list without repeats.
func unionSorted(a, b []string) []string {
	set := make(map[string]bool, len(a)+len(b))
	out := make([]string, 0, len(a)+len(b))
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if !set[s] {
				set[s] = true
				out = append(out, s)
			}
		}
	}
	sort.Strings(out)
	return out
}
