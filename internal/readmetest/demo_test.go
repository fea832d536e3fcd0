//go:build unix

package readmetest

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoScript: scripts/demo.sh parses, and make demo refuses at once,
// naming the port and how to free it, when a port it needs is taken
// (before this, it started anyway and the client printed "Unavailable"
// forever while make run held the ports).
func TestDemoScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(repoRoot(t), "scripts", "demo.sh")
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n scripts/demo.sh: %v\n%s", err, out)
	}

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(cmd.Environ(),
		"DEMO_XDS_ADDR=127.0.0.1:"+freePort(t),
		"DEMO_HTTP_ADDR="+taken.Addr().String(),
		"GOFLAGS=-n", // were it to build anyway, build nothing
	)
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("demo.sh with a taken port: %v, want exit 1\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "is already in use") || !strings.Contains(s, "Ctrl-C") {
		t.Errorf("demo.sh does not say which port is taken and how to free it:\n%s", s)
	}
	if strings.Contains(s, "building") {
		t.Errorf("demo.sh started building before it checked its ports:\n%s", s)
	}
}
