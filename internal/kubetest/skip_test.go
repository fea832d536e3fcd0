package kubetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSkipIsRecorded: a skip for a missing binary lands in the file make
// test reads for its summary line, and nothing does when EnvRequire
// turns the skip into a failure.
func TestSkipIsRecorded(t *testing.T) {
	log := filepath.Join(t.TempDir(), "skips")
	t.Setenv(EnvSkipLog, log)
	t.Setenv(EnvRequire, "")
	t.Run("missing", func(t *testing.T) {
		fail(t, fmt.Errorf("%w: kube-apiserver not found", errMissing))
		t.Error("fail did not skip")
	})
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "TestSkipIsRecorded/missing" {
		t.Fatalf("skip log = %q, want the skipped test's name", got)
	}
}
