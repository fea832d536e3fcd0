package render

import (
	"context"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/policies"
	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

// FuzzRenderStrict renders random valid meshes (internal/meshgen, shaped
// by the fuzzer's bytes) and wants no finding: render's self-check runs
// the Envoy-strict rules, so a mesh policies accept must render to config
// every Envoy loads. The seeds (f.Add and testdata/fuzz/FuzzRenderStrict)
// run with every `go test`; explore with
//
//	go test -fuzz FuzzRenderStrict -fuzztime 60s ./render
func FuzzRenderStrict(f *testing.F) {
	f.Add(int64(1), uint8(3), uint8(0), uint8(2))
	f.Add(int64(7), uint8(8), uint8(1), uint8(5))
	f.Add(int64(42), uint8(5), uint8(2), uint8(1))
	f.Add(int64(-3), uint8(11), uint8(5), uint8(0))
	f.Fuzz(func(t *testing.T, seed int64, size, shape, callees uint8) {
		opt := meshgen.Options{
			Seed:     seed,
			Unscoped: shape&1 == 1,
			Protocol: [...]string{"http", "http2", "grpc"}[int(shape>>1)%3],
			Callees:  int(callees % 6),
		}
		n := 1 + int(size%12)
		m, diags, err := schema.Load(context.Background(), meshgen.Generate(n, opt), schema.Options{})
		if err != nil || diags.HasErrors() {
			t.Fatalf("meshgen(%d, %+v) does not load: %v\n%v", n, opt, err, diags)
		}
		if ds := policies.Check(m); ds.HasErrors() {
			t.Skipf("policies reject meshgen(%d, %+v); not a valid mesh", n, opt)
		}
		if _, err := Render(Input{Mesh: m}); err != nil {
			var b strings.Builder
			if ds, ok := err.(model.Diagnostics); ok {
				for _, d := range ds {
					b.WriteString(d.Code + " " + d.Error() + "\n")
				}
			} else {
				b.WriteString(err.Error())
			}
			t.Fatalf("meshgen(%d, %+v) renders with findings:\n%s", n, opt, b.String())
		}
	})
}
