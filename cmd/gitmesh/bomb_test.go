package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// bombCUE is the bomb: 150 bytes that ask CUE for a gigabyte.
const bombCUE = `package mesh

import "strings"

_s0: strings.Repeat("a", 1000000)
_s1: strings.Repeat(_s0, 1000)

services: web: {
	ports: [{name: "http", number: 8080, protocol: "http"}]
	versions: v1: labels: x: _s1
}
`

// TestValidateBombUnderUlimit is the case as a user runs it: the
// gitmesh process (this test binary acting as gitmesh) under `ulimit -v
// 3000000` validates the bomb repository and exits 1 with a positioned
// finding, instead of dying of "fatal error: out of memory". The largest
// resident set of the process tree is bounded by the cap.
func TestValidateBombUnderUlimit(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "services"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "services", "bomb.cue"), []byte(bombCUE), 0o644); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-c", `ulimit -v 3000000 && exec "$0" "$@"`, self, "validate", dir)
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; output:\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "fatal error") {
		t.Fatalf("gitmesh itself crashed:\n%s", out.String())
	}
	// Where the worker dies depends on how far the cap lets CUE get:
	// building _s1 (line 6) or evaluating the service that uses it
	// (line 8); both are the bomb's own lines.
	finding := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(filepath.Join(dir, "services", "bomb.cue")) +
		`:(6:1: error GM0010: _s1|8:1: error GM0010: services|8:11: error GM0010: services\.web): evaluation exceeded the memory limit of 1 GiB$`)
	if !finding.MatchString(out.String()) {
		t.Errorf("output:\n%s\nwant a line matching %s", out.String(), finding)
	}
	rss := ee.SysUsage().(*syscall.Rusage).Maxrss << 10
	// The cap is what 3,000,000 KiB of address space leaves the worker
	// after its own start (about 1.6 GiB); resident memory stays below.
	if rss > 3000000<<10 {
		t.Errorf("largest resident set %d MiB, over the ulimit", rss>>20)
	}
	t.Logf("exit 1 after %v; largest resident set %d MiB", took.Round(time.Millisecond), rss>>20)
}

// TestServeKeepsLastGoodOnBomb: serve, fetching from a real git daemon,
// meets the bomb commit: the load is refused with the positioned finding,
// the last good revision keeps serving, and the next good commit applies
// (the dead worker is replaced).
func TestServeKeepsLastGoodOnBomb(t *testing.T) {
	repo, good, cfg := minimalFromGit(t)
	cfg.load.maxEvalMemory = 256 << 20
	m, _ := startServe(t, cfg, io.Discard)
	var st apiv1.Status
	waitFor(t, 10*time.Second, "the first revision", func() bool { getStatus(t, m, &st); return st.Live != nil })
	if st.Live.ID != good {
		t.Fatalf("live %+v, want %s", st.Live, good)
	}

	bomb := repo.commit("add a bomb", map[string]string{"services/bomb.cue": bombCUE})
	m.rec.Trigger()
	waitFor(t, 30*time.Second, "the bomb to be judged", func() bool {
		getStatus(t, m, &st)
		return st.LastAttempt != nil && st.LastAttempt.Revision.ID == bomb
	})
	if st.Live.ID != good || m.xds.Revision() != good {
		t.Fatalf("live %s, xds serves %s; want %s kept", st.Live.ID, m.xds.Revision(), good)
	}
	a := st.LastAttempt
	if len(a.Diagnostics) != 1 || a.Diagnostics[0].Code != "GM0010" || a.FailedStep != "load" {
		t.Fatalf("last attempt %+v; want failed at load with one GM0010", a)
	}
	if d := a.Diagnostics[0]; d.Pos.String() != "services/bomb.cue:6:1" || d.Path != "_s1" {
		t.Errorf("finding at %s (%s), want services/bomb.cue:6:1 (_s1)", d.Pos, d.Path)
	}
	if code, _ := httpGet(t, "http://"+m.HTTPAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200: the last good revision still serves", code)
	}

	fixed := repo.commit("defuse", map[string]string{"services/bomb.cue": "package mesh\n"})
	m.rec.Trigger()
	waitFor(t, 30*time.Second, "the fix to apply", func() bool { getStatus(t, m, &st); return st.Live != nil && st.Live.ID == fixed })
}
