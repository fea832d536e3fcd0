package reconciler

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitmesh/gitmesh/internal/gittest"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// TestFetchOverBoundKeepsServing: a commit adding a blob bigger than the
// fetch bound fails the fetch step with a permanent, readable error; the
// last good revision keeps serving and status says why.
func TestFetchOverBoundKeepsServing(t *testing.T) {
	work := filepath.Join(t.TempDir(), "mesh")
	copyDir(t, filepath.Join("..", "examples", "minimal"), work)
	env := gittest.Env("", gittest.Person{Name: "Mesh Author", Email: "author@example.com"})
	gittest.Run(t, env, work, "init", "-q", "-b", "main")
	gittest.Run(t, env, work, "add", "-A")
	gittest.Run(t, env, work, "commit", "-q", "-m", "seed")
	good := gittest.Run(t, env, work, "rev-parse", "HEAD")

	src, err := source.NewGit(source.GitOptions{URL: work, CacheDir: t.TempDir(), MaxFetchSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := xds.New(xds.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := New(Options{Source: src, Server: srv, StateDir: t.TempDir(), Logger: quiet, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec.ReconcileOnce(ctx)
	if st := rec.Status(); !st.Ready || st.Live.ID != good {
		t.Fatalf("seed: ready=%v live=%q, want %q", st.Ready, st.Live.ID, good)
	}

	big := make([]byte, 2<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Run(t, env, work, "add", "-A")
	gittest.Run(t, env, work, "commit", "-q", "-m", "big")
	rec.ReconcileOnce(ctx)
	st := rec.Status()
	if got := condition(st, ConditionFetched); got != "False/FetchFailed" {
		t.Errorf("SourceFetched = %s, want False/FetchFailed", got)
	}
	if msg := conditionMessage(st, ConditionFetched); !strings.Contains(msg, "the fetch exceeded 1 MiB; raise --max-repo-size or shrink the repository") {
		t.Errorf("SourceFetched message %q", msg)
	}
	if got := condition(st, ConditionStalled); !strings.HasPrefix(got, "True/") {
		t.Errorf("Stalled = %s, want True: refetching the same commit cannot help", got)
	}
	if st.Live.ID != good || srv.Revision() != good || !rec.Ready() {
		t.Errorf("live %q, served %q, ready %v; want %q still serving", st.Live.ID, srv.Revision(), rec.Ready(), good)
	}
}
