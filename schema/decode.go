package schema

import (
	"bytes"
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"

	"github.com/gitmesh/gitmesh/schema/model"
)

// decodeViaJSON picks how validated values become model structs: exporting
// JSON and using encoding/json (true) or cue.Value.Decode (false). JSON won
// by measurement: at 300 services decoding alone took 75 vs 115 CPU-ms,
// and a whole load of 1,000 services allocates 299 vs 399 MB
// (BenchmarkLoadDecode). The switch stays so the comparison can be re-run
// on new CUE versions.
var decodeViaJSON = true

// decoder fills a model.Mesh from validated CUE values.
type decoder struct {
	mesh *model.Mesh
	// exported keeps each entity's JSON for guardrails, keyed by
	// kind then name; nil unless guardrails need it.
	exported map[string]map[string]json.RawMessage
	meshJSON json.RawMessage
	hasMesh  bool // the mesh block was decoded
}

func newDecoder(keepJSON bool) *decoder {
	d := &decoder{mesh: &model.Mesh{
		Services:   map[string]*model.Service{},
		Gateways:   map[string]*model.Gateway{},
		External:   map[string]*model.External{},
		Extensions: map[string]*model.Extension{},
	}}
	if keepJSON {
		d.exported = map[string]map[string]json.RawMessage{}
	}
	return d
}

// into decodes v into out, recording a diagnostic at path on failure.
func (d *decoder) into(v cue.Value, out any, path string, e *evaluator) ([]byte, bool) {
	if !decodeViaJSON && d.exported == nil {
		if err := v.Decode(out); err != nil {
			e.add(CodeSchema, path, err.Error(), nil)
			return nil, false
		}
		return nil, true
	}
	b, err := v.MarshalJSON()
	if err != nil {
		e.addErr("", err)
		return nil, false
	}
	if err := json.Unmarshal(b, out); err != nil {
		e.add(CodeSchema, path, err.Error(), nil)
		return nil, false
	}
	return b, true
}

func (d *decoder) meshConfig(v cue.Value, e *evaluator) {
	b, ok := d.into(v, &d.mesh.Mesh, "mesh", e)
	d.meshJSON, d.hasMesh = b, ok
}

// entity decodes one validated entity of kind into the mesh and fills what
// the schema leaves to Go: names from map keys and route names.
func (d *decoder) entity(kind, name string, v cue.Value, e *evaluator) {
	path := model.Path(kind, name)
	var (
		b  []byte
		ok bool
	)
	switch kind {
	case "services":
		s := &model.Service{}
		if b, ok = d.into(v, s, path, e); !ok {
			return
		}
		s.Name = name
		uniquePorts(path, s.Ports, e)
		for vn, ver := range s.Versions {
			ver.Name = vn
		}
		nameRoutes(s.Routes)
		d.mesh.Services[name] = s
	case "gateways":
		g := &model.Gateway{}
		if b, ok = d.into(v, g, path, e); !ok {
			return
		}
		g.Name = name
		nameRoutes(g.Routes)
		d.mesh.Gateways[name] = g
	case "external":
		x := &model.External{}
		if b, ok = d.into(v, x, path, e); !ok {
			return
		}
		x.Name = name
		uniquePorts(path, x.Ports, e)
		d.mesh.External[name] = x
	case "extensions":
		x, raw, ok := d.extension(v, path, e)
		if !ok {
			return
		}
		b = raw
		x.Name = name
		d.mesh.Extensions[name] = x
	}
	if d.exported != nil {
		if d.exported[kind] == nil {
			d.exported[kind] = map[string]json.RawMessage{}
		}
		d.exported[kind][name] = b
	}
}

// extension decodes an extension; its config is an open struct that the
// model keeps as canonical JSON text (sorted keys, numbers as written).
func (d *decoder) extension(v cue.Value, path string, e *evaluator) (*model.Extension, []byte, bool) {
	b, err := v.MarshalJSON()
	if err != nil {
		e.addErr("", err)
		return nil, nil, false
	}
	var wire struct {
		model.Extension
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		e.add(CodeSchema, path, err.Error(), nil)
		return nil, nil, false
	}
	x := wire.Extension
	if len(wire.Config) > 0 {
		c, err := canonicalJSON(wire.Config)
		if err != nil {
			e.internal(fmt.Errorf("canonicalize config of %s: %w", path, err))
			return nil, nil, false
		}
		x.Config = c
	}
	return &x, b, true
}

// canonicalJSON re-encodes JSON with sorted object keys and numbers kept
// as written, so equal configs give equal text (and equal render hashes).
func canonicalJSON(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// uniquePorts reports a port name or number used twice. It is checked
// here rather than in CUE, where a comprehension over the ports reported
// at the service instead of the duplicate, and also fired on empty lists.
func uniquePorts(path string, ports []model.Port, e *evaluator) {
	names, numbers := map[string]bool{}, map[int]bool{}
	for i, p := range ports {
		pp := model.Index(path+".ports", i)
		if names[p.Name] {
			e.add(CodeSchema, pp+".name", fmt.Sprintf("duplicate port name %q", p.Name), nil)
		}
		if numbers[p.Number] {
			e.add(CodeSchema, pp+".number", fmt.Sprintf("duplicate port number %d", p.Number), nil)
		}
		names[p.Name], numbers[p.Number] = true, true
	}
}

// nameRoutes gives unnamed routes their default name "route-N".
func nameRoutes(rs []model.Route) {
	for i := range rs {
		if rs[i].Name == "" {
			rs[i].Name = fmt.Sprintf("route-%d", i)
		}
	}
}

// merge moves what other decoded into d; entities never overlap between
// workers.
func (d *decoder) merge(other *decoder) {
	if other == nil {
		return
	}
	if other.hasMesh {
		d.hasMesh = true
		d.mesh.Mesh = other.mesh.Mesh
		d.meshJSON = other.meshJSON
	}
	for k, v := range other.mesh.Services {
		d.mesh.Services[k] = v
	}
	for k, v := range other.mesh.Gateways {
		d.mesh.Gateways[k] = v
	}
	for k, v := range other.mesh.External {
		d.mesh.External[k] = v
	}
	for k, v := range other.mesh.Extensions {
		d.mesh.Extensions[k] = v
	}
	for kind, byName := range other.exported {
		if d.exported[kind] == nil {
			d.exported[kind] = map[string]json.RawMessage{}
		}
		for k, v := range byName {
			d.exported[kind][k] = v
		}
	}
}
