package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/reconciler"
	"github.com/gitmesh/gitmesh/reconciler/source"
	"github.com/gitmesh/gitmesh/reconciler/xds"
)

// With -change-via dir (the default) the mesh takes the real serve path:
// it is written to a directory, a DirSource watches it and a Reconciler
// serves it into the xDS server, and the one-service edit is a write of its
// CUE file. The change is then timed from that write, so the directory
// source's pickup is part of it (change_write_*), and from the
// Reconciler's Apply as before (change_p50_ms …).

// timedApplier is the Reconciler's Applier: the xDS server, with the time
// every Apply started and took.
type timedApplier struct {
	srv *xds.Server

	mu      sync.Mutex
	applies []appliedAt
}

type appliedAt struct {
	start time.Time
	took  time.Duration
	err   error
}

func (a *timedApplier) Apply(u xds.Update) error {
	t := time.Now()
	err := a.srv.Apply(u)
	a.mu.Lock()
	a.applies = append(a.applies, appliedAt{t, time.Since(t), err})
	a.mu.Unlock()
	return err
}

// since returns the first Apply that started at or after t.
func (a *timedApplier) since(t time.Time) (appliedAt, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ap := range a.applies {
		if !ap.start.Before(t) {
			return ap, true
		}
	}
	return appliedAt{}, false
}

func (a *timedApplier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.applies)
}

// dirServe is a Reconciler serving a directory into the bench's server.
type dirServe struct {
	dir     string
	applier *timedApplier
	rec     *reconciler.Reconciler
	stop    func()
}

// lastAttempt returns when the Reconciler's last attempt started and how
// long its steps took.
func (d *dirServe) lastAttempt() (time.Time, map[string]float64) {
	a := d.rec.Status().LastAttempt
	if a == nil {
		return time.Time{}, nil
	}
	return a.StartedAt, a.TimingsMillis
}

// startDirServe writes fsys to a new directory and starts a Reconciler on
// it that applies to srv, then waits until its first reconcile applied it.
func startDirServe(ctx context.Context, fsys fstest.MapFS, srv *xds.Server, log *slog.Logger) (*dirServe, error) {
	dir, err := os.MkdirTemp("", "meshbench-")
	if err != nil {
		return nil, fmt.Errorf("mesh directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(dir)
		}
	}()
	for name, f := range fsys {
		if err := writeFile(dir, name, f.Data); err != nil {
			return nil, err
		}
	}
	src, err := source.NewDir(source.DirOptions{Dir: dir, Logger: log})
	if err != nil {
		return nil, err
	}
	ap := &timedApplier{srv: srv}
	rec, err := reconciler.New(reconciler.Options{Source: src, Watch: src.Watch, Server: ap,
		Interval: time.Hour, Logger: log})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(rctx) }()
	d := &dirServe{dir: dir, applier: ap, rec: rec, stop: func() { cancel(); <-done; os.RemoveAll(dir) }}
	for ap.count() == 0 {
		if rec.Settled() { // reconciled without applying: the revision failed
			d.stop()
			return nil, fmt.Errorf("reconciler's first reconcile failed: %+v", rec.Status().Conditions)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			d.stop()
			return nil, fmt.Errorf("wait for the reconciler's first apply: %w", err)
		}
	}
	if first, _ := ap.since(time.Time{}); first.err != nil {
		d.stop()
		return nil, fmt.Errorf("reconciler's first apply: %w", first.err)
	}
	ok = true
	return d, nil
}

// write replaces name's content in the served directory, as an editor or
// a `git pull` does, and returns when the write started.
func (d *dirServe) write(name string, data []byte) (time.Time, error) {
	t := time.Now()
	return t, writeFile(d.dir, name, data)
}

func writeFile(dir, name string, data []byte) error {
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
