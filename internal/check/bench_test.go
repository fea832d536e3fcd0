package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitmesh/gitmesh/internal/meshgen"
)

// BenchmarkCheckBookinfo: a one-line weight change on bookinfo, the whole
// check (open repo, read base from the object store, load, policies and
// render both sides, diff). Target < 1 s.
func BenchmarkCheckBookinfo(b *testing.B) {
	r := newTestRepo(b, bookinfo())
	r.edit(b, "services/reviews.cue", `{version: "v1", weight: 50}`, `{version: "v1", weight: 80}`)
	r.edit(b, "services/reviews.cue", `{version: "v3", weight: 50}`, `{version: "v3", weight: 20}`)
	benchCheck(b, r)
}

// BenchmarkCheckGenerated1000: a 1,000-service generated mesh in a Git
// repository, one service's weights changed. Target < 5 s.
func BenchmarkCheckGenerated1000(b *testing.B) {
	r := newTestRepo(b, meshgen.Generate(1000, meshgen.Options{Seed: 1}))
	file := meshgen.ServiceFile(500)
	for _, w := range [][2]int{{50, 50}, {90, 10}} {
		old := fmt.Sprintf(`weight: %d}, {version: "v2", weight: %d}`, w[0], w[1])
		if content := readMesh(b, r, file); strings.Contains(content, old) {
			r.edit(b, file, old, `weight: 70}, {version: "v2", weight: 30}`)
			break
		}
	}
	benchCheck(b, r)
}

func benchCheck(b *testing.B, r *testRepo) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := Run(context.Background(), Options{Dir: r.meshDir(), Base: "main"})
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed || !rep.Impact.Available || rep.Impact.Proxies == 0 || rep.Impact.Changed == 0 {
			b.Fatalf("unexpected report: failed %v, impact %+v, counts %+v", rep.Failed, rep.Impact, rep.Counts)
		}
	}
}

func readMesh(b *testing.B, r *testRepo, file string) string {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(r.meshDir(), filepath.FromSlash(file)))
	if err != nil {
		b.Fatal(err)
	}
	return string(data)
}
