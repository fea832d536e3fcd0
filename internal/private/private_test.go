package private

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o604, false}, {0o644, false}} {
		p := filepath.Join(dir, tc.mode.String())
		os.WriteFile(p, []byte("x"), 0o600)
		os.Chmod(p, tc.mode)
		err := CheckFile(p)
		if (err == nil) != tc.ok {
			t.Errorf("mode %04o: err = %v, want ok=%v", tc.mode, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v does not say how to fix it", tc.mode, err)
		}
	}
	if err := CheckFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}
