package schema

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
)

// FuzzLoad feeds arbitrary bytes to the loader as one CUE file (and as one
// YAML file). The loader must never panic and never fail internally: every
// bad input is a diagnostic. It loads through a Sandbox, as gitmesh does
// with untrusted input: the seeds include the bomb suite (testdata/bombs),
// and the fuzzer can write bombs of its own.
//
//	go test ./schema -run XXX -fuzz FuzzLoad -fuzztime 60s
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*/*.cue")
	more, _ := filepath.Glob("testdata/*/*/*/*.cue")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("package mesh\nservices: a: ports: [{name: \"x\", number: 1}]\n"))
	sb, err := NewSandbox(SandboxOptions{MaxMemory: testLimit})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sb.Close() })
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, name := range []string{"services/fuzz.cue", "services/fuzz.yaml"} {
			fsys := fstest.MapFS{name: {Data: src}}
			_, _, err := Load(context.Background(), fsys, Options{Timeout: 5 * time.Second, Sandbox: sb})
			if err != nil {
				t.Fatalf("internal error on %s: %v", name, err)
			}
		}
	})
}
