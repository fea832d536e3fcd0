package state

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLoadForRefusesOtherOrigin: a state written for --path staging is not
// restored for --path prod, and the error names both; the same origin, or
// a file from before origins were recorded, loads.
func TestLoadForRefusesOtherOrigin(t *testing.T) {
	staging := Origin{URL: "https://git.example.com/mesh.git", Branch: "main", Path: "staging"}
	prod := Origin{URL: "https://git.example.com/mesh.git", Branch: "main", Path: "prod"}
	dir := t.TempDir()
	lg := sample()
	lg.Origin = staging
	if err := Save(dir, lg); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFor(dir, prod)
	if !errors.Is(err, ErrOtherOrigin) {
		t.Fatalf("LoadFor(prod) = %v, want ErrOtherOrigin", err)
	}
	for _, want := range []string{"https://git.example.com/mesh.git branch main path staging", "not of https://git.example.com/mesh.git branch main path prod", "last-good.gob"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	for _, o := range []Origin{staging, {}} {
		if got, err := LoadFor(dir, o); err != nil || got.Origin != staging {
			t.Errorf("LoadFor(%v) = %v, %v; want the staging state", o, got, err)
		}
	}
	// Another branch or remote is another source too.
	for _, o := range []Origin{{URL: staging.URL, Branch: "release", Path: "staging"}, {Dir: "/srv/mesh"}} {
		if _, err := LoadFor(dir, o); !errors.Is(err, ErrOtherOrigin) {
			t.Errorf("LoadFor(%v) = %v, want ErrOtherOrigin", o, err)
		}
	}
	// A file written before origins existed has none: it is accepted.
	old := sample()
	if err := Save(dir, old); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFor(dir, prod); err != nil {
		t.Errorf("a state without an origin: %v, want it restored", err)
	}
}

// TestLockIsExclusive: a second holder of a state dir fails at once with
// the first one's pid; after Release it can take it.
func TestLockIsExclusive(t *testing.T) {
	dir := t.TempDir()
	first, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire = %v, want ErrLocked", err)
	}
	if want := "is locked by another gitmesh serve (pid " + strconv.Itoa(os.Getpid()) + ")"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q, want the dir and %q", err, want)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	second, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	second.Release()
}
