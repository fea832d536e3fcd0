package check

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gitmesh/gitmesh/schema"
	"github.com/gitmesh/gitmesh/schema/model"
)

var (
	fuzzBaseOnce sync.Once
	fuzzBase     *Side
	fuzzFiles    fstest.MapFS
)

// fuzzTargets are the files the first input byte picks for the fuzzed
// content: a CUE service, the suppressions file, a YAML data file.
var fuzzTargets = []string{"services/reviews.cue", SuppressionsFile, "services/extra.yaml"}

// FuzzCheck puts arbitrary bytes into one file of an in-memory copy of
// bookinfo and runs the whole check against bookinfo as base: load,
// policies, render, findings, semantic diff and every output format. It
// must never panic or return an internal error.
func FuzzCheck(f *testing.F) {
	reviews, err := os.ReadFile(filepath.Join("..", "..", "examples", "bookinfo", "services", "reviews.cue"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), reviews)
	f.Add(byte(0), []byte("package mesh\nservices: reviews: routes: [{to: [{version: \"v1\", weight: 80}, {version: \"v3\", weight: 20}]}]\n"))
	f.Add(byte(0), []byte("package mesh\nservices: reviews: {"))
	f.Add(byte(1), []byte("suppressions:\n  - code: GM0403\n    reason: known\n"))
	f.Add(byte(1), []byte("suppressions: [{code: GM0102}, 3, {x: y}]\n"))
	f.Add(byte(2), []byte("services:\n  extra:\n    ports: [{name: http, number: 80}]\n"))
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		fuzzBaseOnce.Do(func() { fuzzBase, fuzzFiles = loadFuzzBase(t) })
		head := fstest.MapFS{}
		for k, v := range fuzzFiles {
			head[k] = v
		}
		head[fuzzTargets[int(which)%len(fuzzTargets)]] = &fstest.MapFile{Data: data, Mode: 0o644}
		opts := schema.Options{Timeout: 10 * time.Second}
		side, err := LoadSide(context.Background(), head, opts)
		if err != nil {
			t.Fatalf("internal error: %v", err)
		}
		rep := Compare(fuzzBase, side, model.SeverityError)
		for _, format := range Formats {
			if err := Write(io.Discard, rep, format, WriteOptions{Color: true}); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
	})
}

func loadFuzzBase(t *testing.T) (*Side, fstest.MapFS) {
	src := os.DirFS(filepath.Join("..", "..", "examples", "bookinfo"))
	files := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		files[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	base, err := LoadSide(context.Background(), files, schema.Options{})
	if err != nil || base.Bundle == nil {
		t.Fatalf("bookinfo does not load: %v %v", err, base)
	}
	return base, files
}
