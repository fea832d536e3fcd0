package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/internal/adsload"
	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/reconciler/xds"
	"github.com/gitmesh/gitmesh/render"
	"github.com/gitmesh/gitmesh/schema"
)

// revision is one mesh revision taken through the real pipeline, as the
// reconciler's steps do: load → check → render → Bundle.Update.
type revision struct {
	id     string
	bundle *render.Bundle
	update xds.Update
	// Milliseconds per step.
	loadMS, checkMS, renderMS, updateMS float64
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// buildRevision runs fsys through the pipeline, as the reconciler's steps
// do (no credentials source: meshgen names none). A generated mesh must be
// valid: any error finding is a bug in meshgen or the tool, so it fails.
// The schema cache is shared between revisions, as the reconciler's is, so
// a one-service change re-checks one entity.
func buildRevision(ctx context.Context, id string, fsys fstest.MapFS, cache *schema.Cache) (*revision, error) {
	r := &revision{id: id}
	res := pipeline.Run(ctx, pipeline.Input{Files: fsys, Load: schema.Options{Timeout: 10 * time.Minute, Cache: cache}})
	r.loadMS = ms(res.Timings[pipeline.StepLoad])
	r.checkMS = ms(res.Timings[pipeline.StepPolicies])
	r.renderMS = ms(res.Timings[pipeline.StepRender])
	if res.Err != nil {
		return nil, fmt.Errorf("%s %s: %w", res.FailedStep, id, res.Err)
	}
	if !res.OK() {
		return nil, fmt.Errorf("%s %s: %s", res.FailedStep, id, res.Summary())
	}
	t := time.Now()
	r.bundle = res.Bundle
	r.update = res.Bundle.Update(id) // render's own snapshot: no conversion left to time
	r.updateMS = ms(time.Since(t))
	return r, nil
}

// generate returns the meshgen repository of the run; every k-th service
// (k > 0) is made proxyless, so grpc-go style streams are part of the load.
func generate(o options) (fstest.MapFS, error) {
	fsys := meshgen.Generate(o.services, meshgen.Options{Seed: o.seed, Unscoped: o.unscoped, Callees: o.callees})
	if o.proxylessEvery <= 0 {
		return fsys, nil
	}
	for i := 0; i < o.services; i += o.proxylessEvery {
		name := meshgen.ServiceName(i)
		f := fsys[meshgen.ServiceFile(i)]
		head := "services: " + name + ": {\n"
		re := regexp.MustCompile(regexp.QuoteMeta(head))
		if !re.Match(f.Data) {
			return nil, fmt.Errorf("make %q proxyless: %q not found in %s", name, head, meshgen.ServiceFile(i))
		}
		data := re.ReplaceAllLiteral(f.Data, []byte(head+"\tproxy: \"proxyless\"\n"))
		fsys[meshgen.ServiceFile(i)] = &fstest.MapFile{Data: data, Mode: f.Mode}
	}
	return fsys, nil
}

var weightsRE = regexp.MustCompile(`to: \[\{version: "v1", weight: (\d+)\}, \{version: "v2", weight: (\d+)\}\]`)

// editWeights returns a copy of fsys in which service i's split moves ten
// points from v1 to v2 (or back when v2 already has 50 or more): the
// one-file commit an operator pushes for a canary step.
func editWeights(fsys fstest.MapFS, i int) (fstest.MapFS, error) {
	path := meshgen.ServiceFile(i)
	f, ok := fsys[path]
	if !ok {
		return nil, fmt.Errorf("edit weights: no %s", path)
	}
	m := weightsRE.FindSubmatch(f.Data)
	if m == nil {
		return nil, fmt.Errorf("edit weights: no v1/v2 split in %s", path)
	}
	w1, _ := strconv.Atoi(string(m[1]))
	w2, _ := strconv.Atoi(string(m[2]))
	if w2 >= 50 {
		w1, w2 = w1+10, w2-10
	} else {
		w1, w2 = w1-10, w2+10
	}
	repl := fmt.Sprintf(`to: [{version: "v1", weight: %d}, {version: "v2", weight: %d}]`, w1, w2)
	out := make(fstest.MapFS, len(fsys))
	for k, v := range fsys {
		out[k] = v
	}
	out[path] = &fstest.MapFile{Data: weightsRE.ReplaceAllLiteral(f.Data, []byte(repl)), Mode: f.Mode}
	return out, nil
}

// planStreams spreads m streams over the bundle's classes: evenly across
// the sorted class list when there are fewer streams than classes (so every
// part of the mesh has proxies), round robin otherwise. Stream i's node is
// CLASS/load-i.
func planStreams(b *render.Bundle, m int) []adsload.Stream {
	classes := b.Classes()
	out := make([]adsload.Stream, m)
	for i := range out {
		k := i % len(classes)
		if m < len(classes) {
			k = i * len(classes) / m
		}
		class := classes[k]
		s := adsload.Stream{Node: class + "/load-" + strconv.Itoa(i)}
		if p := b.Proxy(class); p.Kind == render.KindProxyless {
			s.Mode = adsload.Proxyless
			s.Listeners = p.Names(adsload.Types[0])
		}
		out[i] = s
	}
	return out
}

// classOf is the class part of a planned node id.
func classOf(s adsload.Stream) string {
	class, _ := xds.DefaultClassOf(s.Node)
	return class
}

// expectation is what the streams of a plan must hold for one update.
type expectation struct {
	digests []uint64 // per stream
	// resources per stream (full) or changed resources per stream (change).
	counts []int
}

// expect computes every stream's target digest for u, and with prev the
// resources a delta stream must receive to go from prev to u.
func expect(e *adsload.Expecter, streams []adsload.Stream, u xds.Update, prev *xds.Update) (expectation, error) {
	ex := expectation{digests: make([]uint64, len(streams)), counts: make([]int, len(streams))}
	type result struct {
		digest uint64
		count  int
	}
	memo := map[string]result{} // by class and mode: streams of a class agree
	for i, s := range streams {
		class := classOf(s)
		key := class + "\x00" + strconv.Itoa(int(s.Mode))
		r, ok := memo[key]
		if !ok {
			f, err := e.Follow(u.Classes[class], s.Mode, s.Listeners)
			if err != nil {
				return ex, fmt.Errorf("expect %s: %w", class, err)
			}
			r = result{digest: f.Digest(), count: f.Count()}
			if prev != nil {
				old, err := e.Follow(prev.Classes[class], s.Mode, s.Listeners)
				if err != nil {
					return ex, fmt.Errorf("expect %s: %w", class, err)
				}
				r.count = f.Changed(old)
			}
			memo[key] = r
		}
		ex.digests[i], ex.counts[i] = r.digest, r.count
	}
	return ex, nil
}

// reuseUnchanged counts the classes of next whose config is Same as in
// prev (one content version), which Apply skips in O(1). Render versions
// every config, so the server does this reuse on its own; the flag only
// reports it (-reuse-unchanged).
func reuseUnchanged(prev, next *revision) int {
	n := 0
	for class, cfg := range next.update.Classes {
		if prev.update.Classes[class].Same(cfg) {
			n++
		}
	}
	return n
}
