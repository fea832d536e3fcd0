package main

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/cobra"

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
)

// serveOnce builds serve's real wiring on a directory source (plaintext
// xDS bound to loopback but never dialled), runs one reconcile and reads
// the last attempt back through the status API's handler.
func serveOnce(t *testing.T, dir string, flags []string) apiv1.Attempt {
	t.Helper()
	cfg := serveConfig{dir: dir, xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	// The load flags as serve parses them, defaults included.
	fc := &cobra.Command{}
	cfg.load.register(fc)
	if err := fc.ParseFlags(flags); err != nil {
		t.Fatal(err)
	}
	m, err := newServeMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.xdsLis.Close()
		m.httpLis.Close()
	})
	m.rec.ReconcileOnce(context.Background())

	rr := httptest.NewRecorder()
	m.http.Handler.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/status: %d %s", rr.Code, rr.Body)
	}
	var st apiv1.Status
	if err := json.Unmarshal(rr.Body.Bytes(), &st); err != nil {
		t.Fatalf("status API: %v\n%s", err, rr.Body)
	}
	if st.LastAttempt == nil {
		t.Fatalf("status API has no lastAttempt:\n%s", rr.Body)
	}
	return *st.LastAttempt
}

// copyTree copies src into dst, recreating symlinks as links (os.CopyFS
// refuses them, and the symlink case needs its link).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
