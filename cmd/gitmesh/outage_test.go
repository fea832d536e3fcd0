package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeMaxClassLossFlag: --max-class-loss outside (0, 100] is a usage
// error, from the command line and from GITMESH_MAX_CLASS_LOSS alike.
func TestServeMaxClassLossFlag(t *testing.T) {
	dir := copyExample(t, "minimal")
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"zero", []string{"--max-class-loss", "0"}, "", `serve: --max-class-loss: must be a percentage greater than 0 and at most 100 (got "0")`},
		{"env over 100", nil, "150", `serve: --max-class-loss: must be a percentage greater than 0 and at most 100 (got "150")`},
		{"not a number", []string{"--max-class-loss", "half"}, "", `invalid argument "half" for "--max-class-loss"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GITMESH_MAX_CLASS_LOSS", tc.env)
			}
			args := append([]string{"serve", "--dir", dir, "--state-dir", t.TempDir(), "--xds-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, tc.args...)
			code, _, stderr := runCLI(t, args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestValidateEmptyRepository: validate says what serve refuses, a mesh
// repository with no services left (GM0504), and accepts it with
// mesh.allowEmpty.
func TestValidateEmptyRepository(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte("package mesh\n\nmesh: name: \"gone\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "validate", dir)
	if code != 1 || !strings.Contains(stdout+stderr, "mesh.cue:3:1: error GM0504: services: the mesh has no services") {
		t.Fatalf("exit %d, output %q %q; want 1 and GM0504 at mesh.cue:3:1", code, stdout, stderr)
	}
	if err := os.WriteFile(filepath.Join(dir, "mesh.cue"), []byte("package mesh\n\nmesh: {name: \"gone\", allowEmpty: true}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := runCLI(t, "validate", dir); code != 0 {
		t.Fatalf("with allowEmpty: exit %d, output %q %q; want 0", code, stdout, stderr)
	}
}

// TestServeLocksStateDir: a second serve on a state dir in use fails fast,
// before binding a port or writing anything, naming the holder's pid; once
// the first stops, the dir is free.
func TestServeLocksStateDir(t *testing.T) {
	cfg := serveConfig{dir: copyExample(t, "minimal"), xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	_, stop := startServe(t, cfg, io.Discard)

	_, err := newServeMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := fmt.Sprintf("serve: --state-dir: state dir in use: %s is locked by another gitmesh serve (pid %d); give each serve its own --state-dir", cfg.stateDir, os.Getpid())
	var ee *exitError
	if err == nil || err.Error() != want || !errors.As(err, &ee) || ee.code != exitUsage {
		t.Fatalf("second serve: %v, want usage error %q", err, want)
	}

	stop()
	m, err := newServeMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	m.xdsLis.Close()
	m.httpLis.Close()
	m.lock.Release()
}
