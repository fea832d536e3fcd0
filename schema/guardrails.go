package schema

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	"github.com/gitmesh/gitmesh/schema/model"
)

// guardrail is one parsed user guardrail; the format is described in the
// package documentation and in GUARDRAILS.md, and checked against
// #Guardrail in edge.cue.
type guardrail struct {
	name     string
	code     string
	severity model.Severity
	message  string
	check    cue.Value
}

// guardrailStage is the progress of a load that builds the guardrails
// (policies/), before it checks any of them.
const guardrailStage = "policies"

// checkGuardrails evaluates every user guardrail against the decoded mesh.
func (e *evaluator) checkGuardrails(files []repoFile, dec *decoder) model.Diagnostics {
	rails, diags := e.parseGuardrails(files)
	if len(rails) == 0 {
		return diags
	}
	data, err := e.exportedMesh(dec)
	if err != nil {
		e.internal(err)
		return diags
	}
	for _, g := range rails {
		if e.stop.Load() {
			break
		}
		e.onEntity("policies.guardrails." + g.name)
		diags = append(diags, e.railDiags(g, data, "")...)
	}
	return diags
}

// railDiags unifies one guardrail's check with data and returns one
// finding per failing field path under prefix ("" for all), sorted by
// path so the order does not depend on how the mesh was split.
func (e *evaluator) railDiags(g guardrail, data cue.Value, prefix string) model.Diagnostics {
	err := data.Unify(g.check).Validate(cue.Concrete(true), cue.All())
	var diags model.Diagnostics
	seen := map[string]bool{}
	for _, ce := range cueerrors.Errors(err) {
		path := cuePath(ce.Path())
		if seen[path] || (prefix != "" && !ownDiags(prefix, model.Diagnostics{{Path: path}})) {
			continue
		}
		seen[path] = true
		diags = append(diags, model.Diagnostic{Code: g.code, Severity: g.severity,
			Pos: e.sources.Lookup(path), Path: path, Message: g.message})
	}
	sort.Slice(diags, func(i, j int) bool { return diags[i].Path < diags[j].Path })
	return diags
}

// parseGuardrails builds the policies/ files as one package and checks each
// guardrail's shape.
func (e *evaluator) parseGuardrails(files []repoFile) ([]guardrail, model.Diagnostics) {
	var (
		diags model.Diagnostics
		asts  []*ast.File
	)
	for _, f := range files {
		af, ds := parseData(f, "guardrails")
		for _, d := range ds {
			d.Code = CodeGuardrailDef
			diags = append(diags, d)
		}
		if af != nil {
			asts = append(asts, af)
		}
	}
	if len(diags) > 0 || len(asts) == 0 {
		return nil, diags
	}
	v, err := buildFiles(e.ctx, "guardrails", asts)
	if err == nil {
		err = v.Err()
	}
	if err != nil {
		return nil, append(diags, e.guardrailDiags("", err)...)
	}
	it, err := v.Fields()
	if err != nil {
		return nil, append(diags, e.guardrailDiags("", err)...)
	}
	for it.Next() {
		if it.Selector().String() != "guardrails" {
			diags = append(diags, e.guardrailDiag(it.Value().Pos(), it.Selector().String(), "field not allowed"))
		}
	}
	def := e.schema.LookupPath(cue.ParsePath("#Guardrail"))
	var rails []guardrail
	gs, err := v.LookupPath(cue.ParsePath("guardrails")).Fields()
	if err != nil {
		return nil, append(diags, e.guardrailDiags("", err)...)
	}
	for gs.Next() {
		name := gs.Selector().Unquoted()
		path := "guardrails." + gs.Selector().String()
		g := def.Unify(gs.Value())
		if err := g.Validate(); err != nil {
			diags = append(diags, e.guardrailDiags(path, err)...)
			continue
		}
		// check is taken from the user's value, not from g: unifying with
		// the #Guardrail definition closes it, and a closed check would
		// reject every data field it does not mention.
		r := guardrail{name: name, check: gs.Value().LookupPath(cue.ParsePath("check"))}
		var sev string
		for _, f := range []struct {
			field string
			dst   *string
		}{{"code", &r.code}, {"severity", &sev}, {"message", &r.message}} {
			s, err := g.LookupPath(cue.ParsePath(f.field)).String()
			if err != nil {
				diags = append(diags, e.guardrailDiag(gs.Value().Pos(), path+"."+f.field, "must be a concrete string"))
				continue
			}
			*f.dst = s
		}
		r.severity, _ = model.ParseSeverity(sev)
		if r.code != "" && r.message != "" && sev != "" {
			rails = append(rails, r)
		}
	}
	sort.Slice(rails, func(i, j int) bool { return rails[i].name < rails[j].name })
	return rails, diags
}

// exportedMesh rebuilds the validated, defaulted mesh as one CUE value from
// the JSON each entity was decoded from, so checks see defaults too.
func (e *evaluator) exportedMesh(dec *decoder) (cue.Value, error) {
	doc := map[string]any{}
	if dec.meshJSON != nil {
		doc["mesh"] = dec.meshJSON
	}
	for kind, byName := range dec.exported {
		doc[kind] = byName
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return cue.Value{}, fmt.Errorf("export mesh for guardrails: %w", err)
	}
	v := e.ctx.CompileBytes(b, cue.Filename("$mesh.json"))
	if err := v.Err(); err != nil {
		return cue.Value{}, fmt.Errorf("export mesh for guardrails: %w", err)
	}
	return v, nil
}

// guardrailDiags turns errors in a guardrail file into GM0008 findings;
// prefix is the path of the value that was checked.
func (e *evaluator) guardrailDiags(prefix string, err error) model.Diagnostics {
	var ds model.Diagnostics
	for _, ce := range cueErrors(err, prefix, prefix) {
		var pos model.Pos
		for _, tp := range ce.pos {
			if tp.IsValid() && !strings.HasPrefix(tp.Filename(), schemaPrefix) {
				pos = toPos(tp, "")
				break
			}
		}
		ds = append(ds, model.Diagnostic{Code: CodeGuardrailDef, Severity: model.SeverityError,
			Pos: pos, Path: ce.path, Message: ce.msg()})
	}
	return ds
}

func (e *evaluator) guardrailDiag(p token.Pos, path, msg string) model.Diagnostic {
	return model.Diagnostic{Code: CodeGuardrailDef, Severity: model.SeverityError, Pos: toPos(p, ""), Path: path, Message: msg}
}
