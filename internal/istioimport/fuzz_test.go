package istioimport

import (
	"os"
	"path/filepath"
	"testing"

	"cuelang.org/go/cue/parser"
)

// FuzzConvert: whatever the YAML, Convert returns (never panics) and every
// file it writes is CUE that parses. The seeds are the test cases' inputs.
func FuzzConvert(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res := Convert([]Source{{Name: "in.yaml", Data: data}}, Options{})
		for p, b := range res.Files {
			if _, err := parser.ParseFile(p, b); err != nil {
				t.Fatalf("%s does not parse: %v\n%s", p, err, b)
			}
		}
	})
}
