// Package grafanaquery reads the PromQL queries of gitmesh's Grafana
// dashboards (deploy/grafana) back, so tests can parse every expression
// with Prometheus' own parser and run it against a real Prometheus. It is
// apart from package grafana so that the binary, which embeds the
// dashboards, does not link Prometheus' parser.
package grafanaquery

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"

	"github.com/prometheus/prometheus/promql/parser"
)

// Query is one PromQL expression of a dashboard panel.
type Query struct {
	Dashboard string // file name
	Panel     string // panel title
	RefID     string
	Expr      string
}

func (q Query) String() string { return fmt.Sprintf("%s: %q %s", q.Dashboard, q.Panel, q.RefID) }

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []templateVar `json:"list"`
	} `json:"templating"`
}

// templateVar is a dashboard variable ($datasource, $namespace...).
type templateVar struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"` // a row's panels
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// Queries returns every panel query of every dashboard in fsys, in file
// and panel order. A dashboard without a schemaVersion, without a
// Prometheus data source variable, or with a non-row panel that has no
// query is an error.
func Queries(fsys fs.FS) ([]Query, error) {
	names, err := fs.Glob(fsys, "*.json")
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	var out []Query
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if d.SchemaVersion == 0 {
			return nil, fmt.Errorf("%s: no schemaVersion", name)
		}
		if !slices.ContainsFunc(d.Templating.List, func(v templateVar) bool {
			return v.Type == "datasource" && v.Query == "prometheus"
		}) {
			return nil, fmt.Errorf("%s: no Prometheus data source variable", name)
		}
		var walk func([]panel) error
		walk = func(ps []panel) error {
			for _, p := range ps {
				if p.Type == "row" {
					if err := walk(p.Panels); err != nil {
						return err
					}
					continue
				}
				if len(p.Targets) == 0 {
					return fmt.Errorf("%s: panel %q has no targets", name, p.Title)
				}
				for _, t := range p.Targets {
					if t.Expr == "" {
						return fmt.Errorf("%s: panel %q target %s has no expr", name, p.Title, t.RefID)
					}
					out = append(out, Query{Dashboard: name, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
				}
			}
			return nil
		}
		if err := walk(d.Panels); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var variable = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// Expand replaces Grafana's template variables ($name, ${name}) in expr
// with vals; an unknown variable is an error, so a test cannot run a query
// with a variable it forgot.
func Expand(expr string, vals map[string]string) (string, error) {
	var missing []string
	out := variable.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variable.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := vals[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("no value for template variables %q in %s", missing, expr)
	}
	return out, nil
}

// Metrics parses expr (template variables expanded) with Prometheus' own
// PromQL parser and returns the metric names it selects, sorted.
func Metrics(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(names, vs.Name) {
			names = append(names, vs.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, nil
}
