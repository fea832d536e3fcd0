package conformance

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/gitmesh/gitmesh/internal/pipeline"
	"github.com/gitmesh/gitmesh/schema"
)

// repoRoot is the module root, two levels above this package.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestGRPCCanaryExampleRenders keeps examples/grpc-canary honest: its mesh
// validates without errors and gives the client the listener it dials and
// a cluster per greeter version.
func TestGRPCCanaryExampleRenders(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "examples", "grpc-canary")
	res := pipeline.Run(context.Background(), pipeline.Input{Dir: dir, Load: schema.Options{}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	for _, d := range res.Diagnostics {
		t.Logf("finding: %v", d.Error())
	}
	if !res.OK() {
		t.Fatalf("examples/grpc-canary does not validate (failed at %s)", res.FailedStep)
	}
	b := res.Bundle
	p := b.Proxy("proxyless/default/client/v1")
	if p == nil {
		t.Fatalf("no client class; classes: %v", b.Classes())
	}
	if !slices.Contains(p.Names(resource.ListenerType), "greeter:50051") {
		t.Errorf("client listeners %v lack greeter:50051, the target the demo dials", p.Names(resource.ListenerType))
	}
	for _, v := range []string{"v1", "v2"} {
		name := "outbound|50051|" + v + "|greeter.default.svc.cluster.local"
		if !slices.Contains(p.Names(resource.ClusterType), name) {
			t.Errorf("client clusters %v lack %s", p.Names(resource.ClusterType), name)
		}
	}
}

// TestGRPCCanaryExampleBuilds compiles the example programs, which nothing
// else in `go test` would: they are main packages without tests of their
// own that scripts/demo.sh builds only when someone runs it.
func TestGRPCCanaryExampleBuilds(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", t.TempDir(), "./examples/grpc-canary/...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./examples/grpc-canary/...: %v\n%s", err, strings.TrimSpace(string(out)))
	}
}
