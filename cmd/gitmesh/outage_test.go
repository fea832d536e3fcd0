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

	apiv1 "github.com/gitmesh/gitmesh/reconciler/api/v1"
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
		{"zero", []string{"--max-class-loss", "0"}, "", `--max-class-loss: must be greater than 0 (got "0")`},
		{"over 100", []string{"--max-class-loss", "100.5"}, "", `--max-class-loss: must be at most 100 (got "100.5")`},
		{"env over 100", nil, "150", `GITMESH_MAX_CLASS_LOSS (--max-class-loss): must be at most 100 (got "150")`},
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

// TestServeRefusesCommitDeletingEveryMeshFile is the case end to
// end, through a real git daemon: a commit that deletes every mesh file
// leaves the live revision serving, and status says why (GM0504).
func TestServeRefusesCommitDeletingEveryMeshFile(t *testing.T) {
	repo, good, cfg := minimalFromGit(t)
	m, _ := startServe(t, cfg, io.Discard)
	var st apiv1.Status
	waitFor(t, 10*time.Second, "the first revision", func() bool { getStatus(t, m, &st); return st.Live != nil })
	if st.Live.ID != good || st.Classes != 2 {
		t.Fatalf("live %+v with %d classes, want %s with 2", st.Live, st.Classes, good)
	}

	git(t, repo.work, "rm", "-q", "mesh.cue")
	git(t, repo.work, "commit", "-q", "-m", "remove everything")
	git(t, repo.work, "push", "-q", "origin", "main")
	gone := git(t, repo.work, "rev-parse", "HEAD")
	m.rec.Trigger()
	waitFor(t, 10*time.Second, "the deleting commit to be judged", func() bool {
		getStatus(t, m, &st)
		return st.LastAttempt != nil && st.LastAttempt.Revision.ID == gone
	})
	if st.Live.ID != good || st.Classes != 2 || m.xds.Revision() != good {
		t.Fatalf("live %s with %d classes, xds serves %s; want %s kept", st.Live.ID, st.Classes, m.xds.Revision(), good)
	}
	a := st.LastAttempt
	if st.Ready || a.FailedStep != "check" || len(a.Diagnostics) != 1 || a.Diagnostics[0].Code != "GM0504" {
		t.Fatalf("ready %v, last attempt %+v; want not ready, failed at check with GM0504", st.Ready, a)
	}
	if want := ".: services: the mesh has no services"; !strings.HasPrefix(a.Error, want) {
		t.Errorf("last attempt error %q, want %q…", a.Error, want)
	}
	if code, _ := httpGet(t, "http://"+m.HTTPAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d, want 200: the last good revision still serves", code)
	}
}

// minimalFromGit serves examples/minimal from a real git daemon: the
// repository, its first commit and serve's configuration for it.
func minimalFromGit(t *testing.T) (*gitServer, string, serveConfig) {
	t.Helper()
	repo := newGitServer(t)
	mesh, err := os.ReadFile(filepath.Join("..", "..", "examples", "minimal", "mesh.cue"))
	if err != nil {
		t.Fatal(err)
	}
	good := repo.commit("minimal mesh", map[string]string{"mesh.cue": string(mesh)})
	cfg := serveConfig{repo: repo.url(), branch: "main", xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	return repo, good, cfg
}

// TestServeKeepsServingWhenPathIsDeleted: with --path, a commit deleting
// the mesh directory is a fetch failure that names the path; the live
// revision keeps serving.
func TestServeKeepsServingWhenPathIsDeleted(t *testing.T) {
	repo := newGitServer(t)
	mesh, err := os.ReadFile(filepath.Join("..", "..", "examples", "minimal", "mesh.cue"))
	if err != nil {
		t.Fatal(err)
	}
	good := repo.commit("minimal mesh", map[string]string{"prod/mesh.cue": string(mesh), "README.md": "# meshes\n"})
	cfg := serveConfig{repo: repo.url(), branch: "main", path: "prod", xdsAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", xdsInsecure: true,
		stateDir: t.TempDir(), interval: time.Hour}
	cfg.load.maxFileSize, cfg.load.maxRepoSize, cfg.load.timeout = 1<<20, 64<<20, 30*time.Second
	m, _ := startServe(t, cfg, io.Discard)
	var st apiv1.Status
	waitFor(t, 10*time.Second, "the first revision", func() bool { getStatus(t, m, &st); return st.Live != nil })

	git(t, repo.work, "rm", "-q", "-r", "prod")
	git(t, repo.work, "commit", "-q", "-m", "remove prod")
	git(t, repo.work, "push", "-q", "origin", "main")
	m.rec.Trigger()
	ready := func() string {
		for _, c := range st.Conditions {
			if c.Type == "Ready" {
				return string(c.Status) + "/" + c.Reason + ": " + c.Message
			}
		}
		return ""
	}
	waitFor(t, 10*time.Second, "the deleting commit to be judged", func() bool {
		getStatus(t, m, &st)
		return strings.HasPrefix(ready(), "False/")
	})
	if st.Live.ID != good || st.Classes != 2 || m.xds.Revision() != good {
		t.Fatalf("live %s with %d classes, xds serves %s; want %s kept", st.Live.ID, st.Classes, m.xds.Revision(), good)
	}
	if got := ready(); !strings.HasPrefix(got, "False/FetchFailed: ") || !strings.Contains(got, `path "prod" is not a directory in revision`) || !strings.Contains(got, "(serving the last good revision)") {
		t.Errorf("Ready = %q, want FetchFailed naming the path, serving the last good revision", got)
	}
}
