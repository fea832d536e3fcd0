package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"cuelang.org/go/cue"

	"github.com/gitmesh/gitmesh/schema/model"
)

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
		Tests:      map[string]*model.TrafficTest{},
	}}
	if keepJSON {
		d.exported = map[string]map[string]json.RawMessage{}
	}
	return d
}

// into decodes v into out, recording a diagnostic at path on failure.
func (d *decoder) into(v cue.Value, out any, path string, e *evaluator) ([]byte, bool) {
	return decodeInto(v, out, path, e, d.exported != nil)
}

// decodeInto decodes v into out; needJSON asks for the JSON it was
// decoded from (for guardrails and the load cache) whatever the decoding.
func decodeInto(v cue.Value, out any, path string, e *evaluator, needJSON bool) ([]byte, bool) {
	if e.tune.decodeViaCUE && !needJSON {
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
		e.add(CodeSchema, path, decodeMessage(err), nil)
		return nil, false
	}
	return b, true
}

// decodeMessage says what encoding/json could not decode without its Go
// type names. The schema bounds every number to what its model field (and
// Envoy field) holds, so this is a safety net, not an expected message.
func decodeMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		if field == "" {
			return te.Value + " out of range"
		}
		return fmt.Sprintf("field %q: %s out of range", field, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func (d *decoder) meshConfig(v cue.Value, e *evaluator) {
	b, ok := d.into(v, &d.mesh.Mesh, "mesh", e)
	if ok {
		checkVIPRange(&d.mesh.Mesh, e)
	}
	d.meshJSON, d.hasMesh = b, ok
}

// decodeMeshConfig decodes the mesh block on its own, for the plain path,
// which merges results from several workers.
func decodeMeshConfig(v cue.Value, e *evaluator, needJSON bool) (*model.MeshConfig, []byte, bool) {
	mc := &model.MeshConfig{}
	b, ok := decodeInto(v, mc, "mesh", e, needJSON)
	if ok {
		checkVIPRange(mc, e)
	}
	return mc, b, ok
}

// entity decodes one validated entity of kind into the mesh.
func (d *decoder) entity(kind, name string, v cue.Value, e *evaluator) {
	if x, b, ok := decodeEntity(kind, name, v, e, d.exported != nil); ok {
		d.put(kind, name, x, b)
	}
}

// decodeEntity decodes one validated entity of kind and fills what the
// schema leaves to Go: names from map keys and route names. x is a
// *model.Service, *model.Gateway, *model.External or *model.Extension.
func decodeEntity(kind, name string, v cue.Value, e *evaluator, needJSON bool) (x any, b []byte, ok bool) {
	path := model.Path(kind, name)
	switch kind {
	case "services":
		s := &model.Service{}
		if b, ok = decodeInto(v, s, path, e, needJSON); !ok {
			return nil, nil, false
		}
		s.Name = name
		uniquePorts(path, s.Ports, e)
		checkAddresses(path, s.Addresses, e)
		for vn, ver := range s.Versions {
			ver.Name = vn
		}
		nameRoutes(s.Routes)
		checkRegexes(path, s.Routes, e)
		return s, b, true
	case "gateways":
		g := &model.Gateway{}
		if b, ok = decodeInto(v, g, path, e, needJSON); !ok {
			return nil, nil, false
		}
		g.Name = name
		nameRoutes(g.Routes)
		checkRegexes(path, g.Routes, e)
		return g, b, true
	case "external":
		x := &model.External{}
		if b, ok = decodeInto(v, x, path, e, needJSON); !ok {
			return nil, nil, false
		}
		x.Name = name
		uniquePorts(path, x.Ports, e)
		return x, b, true
	case "tests":
		t := &model.TrafficTest{}
		if b, ok = decodeInto(v, t, path, e, needJSON); !ok {
			return nil, nil, false
		}
		t.Name = name
		return t, b, true
	case "extensions":
		x, raw, ok := decodeExtension(v, path, e)
		if !ok {
			return nil, nil, false
		}
		x.Name = name
		return x, raw, true
	}
	return nil, nil, false
}

// put adds a decoded entity (see decodeEntity) and its JSON to the mesh.
func (d *decoder) put(kind, name string, x any, b []byte) {
	switch x := x.(type) {
	case *model.Service:
		d.mesh.Services[name] = x
	case *model.Gateway:
		d.mesh.Gateways[name] = x
	case *model.External:
		d.mesh.External[name] = x
	case *model.Extension:
		d.mesh.Extensions[name] = x
	case *model.TrafficTest:
		d.mesh.Tests[name] = x
	}
	if d.exported != nil {
		if d.exported[kind] == nil {
			d.exported[kind] = map[string]json.RawMessage{}
		}
		d.exported[kind][name] = b
	}
}

// decodeExtension decodes an extension; its config is an open struct that
// the model keeps as canonical JSON text (sorted keys, numbers as written).
func decodeExtension(v cue.Value, path string, e *evaluator) (*model.Extension, []byte, bool) {
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
		e.add(CodeSchema, path, decodeMessage(err), nil)
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

// checkAddresses reports a declared service address that is not a usable
// unicast IP, at the address itself. Go's netip does the parsing (CUE's
// net.IP would accept the unspecified and loopback addresses, which no
// workload can call a service at). Duplicates across services are
// policies' (GM0605): they need the whole mesh.
func checkAddresses(path string, addrs []string, e *evaluator) {
	for i, a := range addrs {
		if msg := model.CheckVIPAddress(a); msg != "" {
			e.add(CodeSchema, model.Index(path+".addresses", i), fmt.Sprintf("%s (got %q)", msg, a), nil)
		}
	}
}

// checkVIPRange reports a mesh.vipRange that is not a usable CIDR.
func checkVIPRange(mc *model.MeshConfig, e *evaluator) {
	if msg := model.CheckVIPRange(mc.VIPRange); msg != "" {
		e.add(CodeSchema, "mesh.vipRange", msg, nil)
	}
}
