package schema

import (
	"slices"

	"github.com/gitmesh/gitmesh/schema/model"
)

// checkRegexes reports every path and header regex of routes that Envoy's
// RE2 would reject, at the regex itself (see model.CheckRegex). CUE has
// no RE2 check of its own, so this is done on the decoded entity, like
// uniquePorts; the entity stays in the mesh so later checks still see it.
func checkRegexes(path string, routes []model.Route, e *evaluator) {
	for i, r := range routes {
		for j, m := range r.Match {
			mp := model.Index(model.Index(path+".routes", i)+".match", j)
			if m.Path != nil && m.Path.Regex != "" {
				if err := model.CheckRegex(m.Path.Regex); err != nil {
					e.add(CodeSchema, mp+".path.regex", err.Error(), nil)
				}
			}
			for _, name := range sortedNames(m.Headers) {
				if re := m.Headers[name].Regex; re != "" {
					if err := model.CheckRegex(re); err != nil {
						e.add(CodeSchema, model.Join(mp, "headers", name, "regex"), err.Error(), nil)
					}
				}
			}
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
