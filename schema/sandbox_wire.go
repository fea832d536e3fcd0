package schema

import (
	"encoding/json"
	"fmt"

	"github.com/gitmesh/gitmesh/schema/model"
)

// The sandbox's wire format: the parent writes one sandboxRequest per load
// to the worker's stdin and reads one sandboxResponse from its stdout, both
// as JSON; the worker writes a progress line to fd 3 each time evaluation
// moves to another entity, so the parent knows where it was when the
// worker died. JSON because the model's own form is JSON (the loader
// decodes every entity from CUE's JSON export), so what crosses the
// boundary is exactly what an in-process load decodes.

// wireFile is one repository file.
type wireFile struct {
	Path string `json:"path"`
	Src  []byte `json:"src"`
}

// sandboxRequest asks the worker to evaluate one revision.
type sandboxRequest struct {
	// Seq numbers the request; progress lines carry it, so a line left
	// from an earlier request is never taken for this one's.
	Seq        int64      `json:"seq"`
	Data       []wireFile `json:"data"`
	Guardrails []wireFile `json:"guardrails,omitempty"`
	// Incremental loads through the worker's own Cache, which it keeps
	// for its life (see Sandbox).
	Incremental bool `json:"incremental,omitempty"`
	// Locate asks the worker to find where evaluation runs out of
	// memory or time instead of loading (see locate).
	// Locate names the package of Data: mesh or guardrails.
	Locate string `json:"locate,omitempty"`
}

// sandboxResponse is the result of evaluate, as loadResult holds it.
type sandboxResponse struct {
	Mesh    *model.Mesh       `json:"mesh,omitempty"`
	Sources *model.Sources    `json:"sources,omitempty"`
	Diags   model.Diagnostics `json:"diags,omitempty"`
	// Err is an internal failure of the loader (never bad input).
	Err   string      `json:"err,omitempty"`
	Stats *CacheStats `json:"stats,omitempty"`
	// PeakRSS is the worker's high-water resident set so far, in bytes.
	PeakRSS int64 `json:"peakRSS,omitempty"`
}

// progress is one line on fd 3: the entity evaluation moved to, with its
// position (the parent has no Sources until the worker answers).
type progress struct {
	Seq int64     `json:"seq"`
	At  string    `json:"at,omitempty"`
	Pos model.Pos `json:"pos"`
	// Limit, on the worker's first line (Seq 0), is the memory it may
	// use in bytes: less than asked when an inherited cap is lower.
	Limit int64 `json:"limit,omitempty"`
}

func toWire(fs []repoFile) []wireFile {
	out := make([]wireFile, len(fs))
	for i, f := range fs {
		out[i] = wireFile{Path: f.path, Src: f.src}
	}
	return out
}

func fromWire(ws []wireFile) []repoFile {
	out := make([]repoFile, len(ws))
	for i, w := range ws {
		out[i] = repoFile{path: w.Path, src: w.Src}
	}
	return out
}

// encodeResult is what the worker sends for r.
func encodeResult(r loadResult) sandboxResponse {
	resp := sandboxResponse{Mesh: r.mesh, Diags: r.diags}
	if r.mesh != nil {
		resp.Sources = r.mesh.Sources
	}
	if r.err != nil {
		resp.Err = r.err.Error()
	}
	return resp
}

// decodeResult rebuilds the loadResult the worker computed: the parts of
// the model that are not in its JSON form (names, sources, empty maps)
// are restored as the loader's decoder sets them.
func decodeResult(resp sandboxResponse) loadResult {
	if resp.Err != "" {
		return loadResult{err: fmt.Errorf("evaluation worker: %s", resp.Err)}
	}
	m := resp.Mesh
	if m != nil {
		m.SetNames()
		m.Sources = resp.Sources
		if m.Sources == nil {
			m.Sources = model.NewSources()
		}
		if m.Services == nil {
			m.Services = map[string]*model.Service{}
		}
		if m.Gateways == nil {
			m.Gateways = map[string]*model.Gateway{}
		}
		if m.External == nil {
			m.External = map[string]*model.External{}
		}
		if m.Extensions == nil {
			m.Extensions = map[string]*model.Extension{}
		}
		if m.Tests == nil {
			m.Tests = map[string]*model.TrafficTest{}
		}
	}
	return loadResult{mesh: m, diags: resp.Diags}
}

// roundTrip passes r through the wire format, as a load in the sandbox
// does; tests use it to prove the two agree.
func roundTrip(r loadResult) (loadResult, error) {
	b, err := json.Marshal(encodeResult(r))
	if err != nil {
		return loadResult{}, err
	}
	var resp sandboxResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		return loadResult{}, err
	}
	return decodeResult(resp), nil
}
