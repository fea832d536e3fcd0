package schema

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gitmesh/gitmesh/internal/meshgen"
	"github.com/gitmesh/gitmesh/schema/model"
)

// TestMain lets the test binary be the sandbox's worker: Sandbox starts
// this binary with SandboxWorkerArg, as gitmesh starts itself.
func TestMain(m *testing.M) {
	if IsSandboxWorker(os.Args) {
		os.Exit(RunSandboxWorker(os.Args))
	}
	os.Exit(m.Run())
}

// testLimit is the memory cap of the bomb tests: low, so each bomb dies
// fast, and far above what the small valid repositories need.
const testLimit = 256 << 20

func newTestSandbox(t *testing.T, limit int64) *Sandbox {
	t.Helper()
	sb, err := NewSandbox(SandboxOptions{MaxMemory: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// equateMesh compares meshes as the pipeline sees them: an empty slice or
// map is no different from none (JSON drops both), Sources by content.
var equateMesh = cmp.Options{cmpopts.EquateEmpty(), cmp.AllowUnexported(model.Sources{})}

// TestSandboxAgrees: a load in the sandbox returns what a load in this
// process returns (mesh, positions, findings) for every repository the
// package's tests use, valid and broken, through both loader paths and
// the incremental cache.
func TestSandboxAgrees(t *testing.T) {
	repos := map[string]string{"valid": "testdata/valid", "general": "testdata/general", "bookinfo": "../examples/bookinfo",
		"grpc-canary": "../examples/grpc-canary", "minimal": "../examples/minimal"}
	bad, err := os.ReadDir("testdata/bad")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bad {
		repos["bad/"+e.Name()] = filepath.Join("testdata/bad", e.Name())
	}
	sb := newTestSandbox(t, DefaultMaxEvalMemory)
	names := make([]string, 0, len(repos))
	for n := range repos {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			dir := repos[name]
			here, hereDiags, err := LoadDir(context.Background(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			there, thereDiags, err := LoadDir(context.Background(), dir, Options{Sandbox: sb})
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(hereDiags, thereDiags); d != "" {
				t.Errorf("findings differ (-here +sandbox):\n%s", d)
			}
			if d := cmp.Diff(here, there, equateMesh); d != "" {
				t.Errorf("meshes differ (-here +sandbox):\n%s", d)
			}
		})
	}
	t.Run("generated incremental", func(t *testing.T) {
		fsys := meshgen.Generate(60, meshgen.Options{Seed: 3})
		here, _, err := Load(context.Background(), fsys, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cache := NewCache()
		for i, want := range []int{62, 0} { // cold (60 services, a gateway, the mesh block), then all cached
			there, diags, err := Load(context.Background(), fsys, Options{Sandbox: sb, Cache: cache})
			if err != nil || len(diags) > 0 {
				t.Fatalf("load %d: %v %v", i, err, diags)
			}
			if d := cmp.Diff(here, there, equateMesh); d != "" {
				t.Errorf("load %d: meshes differ (-here +sandbox):\n%s", i, d)
			}
			if got := cache.Stats().EntitiesChecked; got != want {
				t.Errorf("load %d checked %d entities, want %d: the worker's cache is not used", i, got, want)
			}
		}
	})
}

// bomb is one case of the bomb suite: a repository under testdata/bombs
// and the one finding it must produce, or none.
type bomb struct {
	name string
	code string // "" means the repository loads
	pos  string // file:line:col of the finding, relative to the repo (a prefix)
	path string // its path (a prefix)
}

// bombs is the suite: each way a few bytes of CUE or YAML can demand
// gigabytes or forever, and where the finding must point.
var bombs = []bomb{
	// The file: a megabyte string repeated a thousand times.
	{"repeat", CodeMemory, "services/bomb.cue:6:1", "_s1"},
	// list.Repeat of a million-element list.
	{"listrepeat", CodeMemory, "services/bomb.cue:10:1", "_l0"},
	// A string doubled thirty times: the step that crosses the cap
	// depends on the worker's start size, so any of _a18…_a29 is right.
	{"doubling", CodeMemory, "services/bomb.cue:2", "_a"},
	// The repeat bomb in a guardrail file.
	{"guardrail", CodeMemory, "policies/bomb.cue:6:1", "_s1"},
	// Nested comprehensions: a million elements of 100 KB each; CUE is
	// slow enough per element that time runs out first.
	{"comprehension", CodeTimeout, "services/bomb.cue:15:1", "_x"},
	// Nested comprehensions: 25 million small structs.
	{"slow", CodeTimeout, "services/bomb.cue:11:1", "_x"},
	// YAML aliases, a billion laughs: the parser refuses them.
	{"yamlalias", CodeSyntax, "services/bomb.yaml:5:1", ""},
	// Definitions that double forty times: CUE shares their structure,
	// so this one loads.
	{"recursive", "", "", ""},
}

// TestBombs runs the suite in one sandbox: each bomb is one positioned
// finding, no worker it kills grows past the cap, and the sandbox loads
// a good repository afterwards (a fresh worker replaces a dead one).
func TestBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("the bomb suite takes a few seconds per bomb")
	}
	sb := newTestSandbox(t, testLimit)
	for _, b := range bombs {
		t.Run(b.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "bombs", b.name)
			m, diags, err := LoadDir(context.Background(), dir, Options{Sandbox: sb, Timeout: 3 * time.Second})
			if err != nil {
				t.Fatalf("internal error instead of a finding: %v", err)
			}
			if b.code == "" {
				if diags.HasErrors() || m == nil {
					t.Fatalf("got %v, want a loaded mesh", diags)
				}
				return
			}
			if len(diags) != 1 {
				t.Fatalf("got %d findings %v, want one %s", len(diags), diags, b.code)
			}
			d := diags[0]
			if d.Code != b.code || !strings.HasPrefix(d.Pos.String(), b.pos) || !strings.HasPrefix(d.Path, b.path) {
				t.Errorf("got %s %s at %s (%s), want %s at %s (%s)", d.Code, d.Message, d.Pos, d.Path, b.code, b.pos, b.path)
			}
			if b.code == CodeMemory && d.Message != "evaluation exceeded the memory limit of 256 MiB" {
				t.Errorf("message %q", d.Message)
			}
		})
	}
	assertWorkersBounded(t, sb)
	m, diags, err := LoadDir(context.Background(), "testdata/valid", Options{Sandbox: sb})
	if err != nil || diags.HasErrors() || m == nil {
		t.Fatalf("a good repository after the bombs: %v %v", err, diags)
	}
}

// assertWorkersBounded checks the resident set of every worker sb ran
// (the kernel's accounting of each dead one): the largest must stay within
// the cap (plus the worker's own start), however much the bombs asked for.
// Without the sandbox the repeat bomb alone takes a gigabyte.
func assertWorkersBounded(t *testing.T, sb *Sandbox) {
	t.Helper()
	peak := sb.PeakRSS()
	if peak == 0 {
		t.Fatal("no worker's resident set was recorded")
	}
	if max := sb.Limit() + 128<<20; peak > max {
		t.Errorf("a worker reached %d MiB resident, want at most %d MiB", peak>>20, max>>20)
	}
	t.Logf("largest worker resident set: %d MiB (cap %d MiB)", peak>>20, sb.Limit()>>20)
}

// TestSandboxTimeoutKillsWorker: a load that runs out of time ends the
// worker (an abandoned goroutine would keep burning a core), and the
// finding names the declaration.
func TestSandboxTimeoutKillsWorker(t *testing.T) {
	sb := newTestSandbox(t, testLimit)
	_, diags, err := LoadDir(context.Background(), "testdata/bombs/slow", Options{Sandbox: sb, Timeout: time.Second})
	if err != nil || len(diags) != 1 || diags[0].Code != CodeTimeout {
		t.Fatalf("got %v %v, want one %s", err, diags, CodeTimeout)
	}
	if want := "evaluation did not finish within 1s"; diags[0].Message != want {
		t.Errorf("message %q, want %q", diags[0].Message, want)
	}
	sb.mu.Lock()
	alive := sb.w
	sb.mu.Unlock()
	if alive != nil {
		t.Errorf("a worker is still running after the timeout")
	}
}

// TestSandboxCancelled: cancelling the caller's context stops the load at
// once with a positioned finding.
func TestSandboxCancelled(t *testing.T) {
	sb := newTestSandbox(t, testLimit)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, diags, err := LoadDir(ctx, "testdata/bombs/slow", Options{Sandbox: sb, Timeout: time.Minute})
	if err != nil || len(diags) != 1 || diags[0].Code != CodeTimeout || !strings.HasPrefix(diags[0].Message, "evaluation cancelled") || !diags[0].Pos.IsValid() {
		t.Fatalf("got %v %v, want one positioned %s evaluation cancelled", err, diags, CodeTimeout)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("cancel took %v", took)
	}
}

// TestSandboxWorkerFailure: a worker that fails for another reason than
// memory is an internal error that says so, not a finding about the mesh.
func TestSandboxWorkerFailure(t *testing.T) {
	sb, err := NewSandbox(SandboxOptions{Executable: "/bin/false"})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_, _, err = Load(context.Background(), fstest.MapFS{"mesh.cue": {Data: []byte("package mesh\n")}}, Options{Sandbox: sb})
	if err == nil || !strings.Contains(err.Error(), "evaluation worker failed: exit status 1") {
		t.Fatalf("got %v, want the worker's failure", err)
	}
}

// TestSandboxInheritedLimit: under a lower `ulimit -v` (the case)
// the worker keeps the cap it inherits, and the finding states the cap it
// really had, not the one asked for.
func TestSandboxInheritedLimit(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "worker.sh")
	script := "#!/bin/sh\nulimit -v 3000000 || exit 9\nexec " + self + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	sb, err := NewSandbox(SandboxOptions{Executable: wrapper, MaxMemory: 8 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	_, diags, err := LoadDir(context.Background(), "testdata/bombs/repeat", Options{Sandbox: sb})
	if err != nil || len(diags) != 1 || diags[0].Code != CodeMemory {
		t.Fatalf("got %v %v, want one %s", err, diags, CodeMemory)
	}
	msg := diags[0].Message
	if strings.Contains(msg, "8 GiB") || !strings.HasPrefix(msg, "evaluation exceeded the memory limit of ") {
		t.Errorf("message %q, want the inherited cap (under 3 GB), not the 8 GiB asked for", msg)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1 GiB", 256 << 20: "256 MiB", 1717986918: "1.6 GiB", 1000: "1000 bytes"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzBombs composes amplifying constructs (repeat, list repeat, nested
// comprehensions, doubling) of fuzzed sizes and depths: whatever the
// input, a load in the sandbox ends with the mesh or with findings, never
// an internal error, a memory or time finding names the file, and no
// worker grows past the cap. `go test` runs the seeds; `make fuzz` runs
// it longer.
func FuzzBombs(f *testing.F) {
	for _, seed := range []struct {
		kind  uint8
		n     uint32
		depth uint8
	}{{0, 1000000, 2}, {1, 1000000, 2}, {2, 3000, 2}, {3, 1000, 30}, {0, 10, 1}, {2, 10, 3}} {
		f.Add(seed.kind, seed.n, seed.depth)
	}
	sb, err := NewSandbox(SandboxOptions{MaxMemory: testLimit})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sb.Close() })
	f.Fuzz(func(t *testing.T, kind uint8, n uint32, depth uint8) {
		src := bombSource(kind, int(n%2000001), int(depth%40)+1)
		fsys := fstest.MapFS{"services/f.cue": {Data: []byte(src)}}
		_, diags, err := Load(context.Background(), fsys, Options{Sandbox: sb, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("internal error: %v\n%s", err, src)
		}
		for _, d := range diags {
			if (d.Code == CodeMemory || d.Code == CodeTimeout) && d.Pos.File != "services/f.cue" {
				t.Errorf("%s not placed in the file: %v", d.Code, d)
			}
		}
		assertWorkersBounded(t, sb)
	})
}

// bombSource writes one generated repository file.
func bombSource(kind uint8, n, depth int) string {
	var b strings.Builder
	b.WriteString("package mesh\n\nimport (\n\t\"list\"\n\t\"strings\"\n)\n\n")
	b.WriteString("services: web: {\n\tports: [{name: \"http\", number: 8080, protocol: \"http\"}]\n\tversions: v1: labels: app: \"web\"\n}\n\n")
	b.WriteString("_unused: [strings.Repeat(\"\", 0), list.Range(0, 0, 1)]\n")
	switch kind % 4 {
	case 0:
		b.WriteString("_v0: strings.Repeat(\"a\", " + itoa(n) + ")\n")
		for i := 1; i < depth; i++ {
			b.WriteString("_v" + itoa(i) + ": strings.Repeat(_v" + itoa(i-1) + ", " + itoa(n) + ")\n")
		}
	case 1:
		b.WriteString("_v0: list.Repeat([\"aaaaaaaa\"], " + itoa(n) + ")\n")
		for i := 1; i < depth; i++ {
			b.WriteString("_v" + itoa(i) + ": list.Repeat(_v" + itoa(i-1) + ", " + itoa(n) + ")\n")
		}
	case 2:
		b.WriteString("_r: list.Range(0, " + itoa(n) + ", 1)\n_v: [")
		for i := 0; i < min(depth, 4); i++ {
			b.WriteString("for x" + itoa(i) + " in _r ")
		}
		b.WriteString("{x0}]\n")
	case 3:
		b.WriteString("_v0: strings.Repeat(\"a\", " + itoa(n) + ")\n")
		for i := 1; i < depth; i++ {
			b.WriteString("_v" + itoa(i) + ": _v" + itoa(i-1) + " + _v" + itoa(i-1) + "\n")
		}
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
